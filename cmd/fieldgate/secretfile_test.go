package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"fieldgate/store"
)

// TestInitialAdminPassword: the first admin's password file is created
// anew (a symlink planted in its place is replaced, its target untouched),
// readable only by its owner, and removed once the password is changed.
func TestInitialAdminPassword(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(target, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, initialAdminFile(dir)); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Options{Path: filepath.Join(dir, "fieldgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := ensureAdmin(st, dir, log); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(initialAdminFile(dir))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the password file: %v %v, want a regular file of mode 0600", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("the symlink's target was written: %q", b)
	}
	if u, err := st.User("admin"); err != nil || len(u.InitialHash) == 0 || !bytes.Equal(u.InitialHash, u.PasswordHash) {
		t.Fatalf("admin is not marked as having the generated password: %v", err)
	}
	if err := ensureAdmin(st, dir, log); err != nil { // a restart: the password still holds
		t.Fatal(err)
	}
	if _, err := os.Stat(initialAdminFile(dir)); err != nil {
		t.Fatalf("the file went while the password still holds: %v", err)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("a new password"), bcrypt.MinCost)
	if err := st.UpdateUser("admin", func(u *store.User) error { u.PasswordHash = hash; return nil }); err != nil {
		t.Fatal(err)
	}
	forgetInitialAdmin(st, dir, log)
	if _, err := os.Stat(initialAdminFile(dir)); !os.IsNotExist(err) {
		t.Errorf("the file survived the password change: %v", err)
	}
}

// TestAStartComparesNoPassword: while admin's password is the generated
// one, a start tells so from the stored mark and runs no bcrypt
// comparison. The proof: a file whose text no longer matches the hash is
// kept all the same, where comparing the password would remove it.
func TestAStartComparesNoPassword(t *testing.T) {
	dir, st, log := adminStore(t)
	if err := os.WriteFile(initialAdminFile(dir), []byte("not the password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	forgetInitialAdmin(st, dir, log)
	if _, err := os.Stat(initialAdminFile(dir)); err != nil {
		t.Fatalf("a start compared the password instead of the mark: %v", err)
	}
}

// TestAStoreWithoutTheMarkIsComparedOnce: admin created before the mark
// existed has none. The first start compares the file's password with
// bcrypt: when it holds, the file stays and admin is marked, so later
// starts need no comparison; when it does not, the file goes.
func TestAStoreWithoutTheMarkIsComparedOnce(t *testing.T) {
	for _, holds := range []bool{true, false} {
		dir, st, log := adminStore(t)
		if err := st.UpdateUser("admin", func(u *store.User) error { u.InitialHash = nil; return nil }); err != nil {
			t.Fatal(err)
		}
		if !holds {
			if err := os.WriteFile(initialAdminFile(dir), []byte("changed since\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		forgetInitialAdmin(st, dir, log)
		_, err := os.Stat(initialAdminFile(dir))
		u, uerr := st.User("admin")
		if uerr != nil {
			t.Fatal(uerr)
		}
		switch {
		case holds && err != nil:
			t.Errorf("the file went though its password holds: %v", err)
		case holds && !bytes.Equal(u.InitialHash, u.PasswordHash):
			t.Error("admin was not marked after the comparison")
		case !holds && !os.IsNotExist(err):
			t.Errorf("the file survived a password that no longer holds: %v", err)
		case !holds && len(u.InitialHash) != 0:
			t.Error("admin was marked though the password no longer holds")
		}
	}
}

// TestTheFileOutlivesAStoreItCannotRead: a store that fails to answer
// says nothing about the password, so the file stays; an admin removed
// for good takes the file with it.
func TestTheFileOutlivesAStoreItCannotRead(t *testing.T) {
	dir, st, log := adminStore(t)
	if _, err := st.PutUser(store.User{Name: "other", Role: "admin", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteUser("admin"); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	forgetInitialAdmin(st, dir, log)
	if _, err := os.Stat(initialAdminFile(dir)); err != nil {
		t.Fatalf("the file went on a store that could not be read: %v", err)
	}
	st, err := store.Open(store.Options{Path: filepath.Join(dir, "fieldgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	forgetInitialAdmin(st, dir, log)
	if _, err := os.Stat(initialAdminFile(dir)); !os.IsNotExist(err) {
		t.Errorf("the file survived admin's removal: %v", err)
	}
}

// adminStore is a fresh store in a temporary data directory, with the
// first admin created as a first start creates it.
func adminStore(t *testing.T) (string, *store.Store, *slog.Logger) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(store.Options{Path: filepath.Join(dir, "fieldgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := ensureAdmin(st, dir, log); err != nil {
		t.Fatal(err)
	}
	return dir, st, log
}
