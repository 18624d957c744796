package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

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
