package store

import (
	"errors"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestUsersAndTokens(t *testing.T) {
	s := mustOpen(t, Options{})
	if _, err := s.PutUser(User{Name: "root", Role: "admin", PasswordHash: []byte("r")}); err != nil {
		t.Fatal(err)
	}
	if created, err := s.PutUser(User{Name: "ana", Role: "technician", PasswordHash: []byte("h")}); err != nil || !created {
		t.Fatalf("PutUser: %v created=%v", err, created)
	}
	if created, err := s.PutUser(User{Name: "ana", Role: "admin"}); err != nil || created {
		t.Fatalf("PutUser again: %v created=%v", err, created)
	}
	if err := s.UpdateUser("ana", func(u *User) error { u.Role = "viewer"; return nil }); err != nil {
		t.Fatal(err)
	}
	if u, err := s.User("ana"); err != nil || u.Role != "viewer" {
		t.Fatalf("User = %+v, %v", u, err)
	}
	if _, err := s.User("bob"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing user: %v", err)
	}
	now := t0
	old := Token{ID: "old", SecretHash: []byte{1}, User: "ana", Kind: "session", ExpiresAt: now.Add(-time.Minute)}
	keep := Token{ID: "api", SecretHash: []byte{2}, User: "ana", Kind: "api"}
	for _, tok := range []Token{old, keep} {
		if err := s.PutToken(tok, now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutToken(Token{ID: "new", SecretHash: []byte{3}, User: "ana", Kind: "session", ExpiresAt: now.Add(time.Hour)}, now); err != nil {
		t.Fatal(err)
	}
	toks, err := s.Tokens()
	if err != nil || len(toks) != 2 || toks[0].ID != "api" || toks[1].ID != "new" {
		t.Fatalf("tokens after a login = %+v, %v; the expired session should be gone", toks, err)
	}
	if !old.Expired(now) || keep.Expired(now) {
		t.Error("Expired is wrong")
	}
	if err := s.DeleteToken("api"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteToken("api"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteToken: %v", err)
	}
	if err := s.DeleteUser("ana"); err != nil {
		t.Fatal(err)
	}
	if toks, _ := s.Tokens(); len(toks) != 0 {
		t.Errorf("tokens of a deleted user survive: %+v", toks)
	}
	if users, err := s.Users(); err != nil || len(users) != 1 {
		t.Errorf("Users = %v, %v", users, err)
	}
}

// TestMigrationAddsUsers opens a schema 1 store, which has no users or
// tokens buckets, and expects them after the migration.
func TestMigrationAddsUsers(t *testing.T) {
	s := mustOpen(t, Options{})
	mustAppend(t, s, reading("a", "temperature", 0, 1))
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bUsers, bTokens} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return putUint(tx.Bucket(bMeta), kSchema, 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, Options{Path: path})
	if _, err := s.PutUser(User{Name: "ana", Role: "admin"}); err != nil {
		t.Fatalf("PutUser after migration: %v", err)
	}
	if n := s.Stats().Readings; n != 1 {
		t.Errorf("%d readings after migration, want 1", n)
	}
}

// TestNewPasswordRevokesTokensAndTheLastAdminStays: a password changed or
// reset revokes the user's sessions and API tokens in the same
// transaction; the last admin can be neither demoted nor removed.
func TestNewPasswordRevokesTokensAndTheLastAdminStays(t *testing.T) {
	s := mustOpen(t, Options{})
	if _, err := s.PutUser(User{Name: "root", Role: "admin", PasswordHash: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"s1", "k1"} {
		if err := s.PutToken(Token{ID: id, SecretHash: []byte(id), User: "root", Kind: "api"}, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.UpdateUser("root", func(u *User) error { u.Role = "admin"; return nil }); err != nil {
		t.Fatal(err)
	}
	if toks, _ := s.Tokens(); len(toks) != 2 {
		t.Fatalf("tokens after a change that kept the password: %v", toks)
	}
	if err := s.UpdateUser("root", func(u *User) error { u.PasswordHash = []byte("b"); return nil }); err != nil {
		t.Fatal(err)
	}
	if toks, _ := s.Tokens(); len(toks) != 0 {
		t.Errorf("tokens after a new password: %v", toks)
	}
	if err := s.UpdateUser("root", func(u *User) error { u.Role = "viewer"; return nil }); !errors.Is(err, ErrLastAdmin) {
		t.Errorf("demoting the last admin: %v", err)
	}
	if _, err := s.PutUser(User{Name: "root", Role: "technician", PasswordHash: []byte("b")}); !errors.Is(err, ErrLastAdmin) {
		t.Errorf("replacing the last admin with a technician: %v", err)
	}
	if err := s.DeleteUser("root"); !errors.Is(err, ErrLastAdmin) {
		t.Errorf("removing the last admin: %v", err)
	}
	if _, err := s.PutUser(User{Name: "eve", Role: "admin", PasswordHash: []byte("e")}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser("root"); err != nil {
		t.Errorf("removing an admin when another remains: %v", err)
	}
}
