package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// User is an account of the local REST API: a technician, a viewer or an
// administrator.
type User struct {
	// Name is the login name.
	Name string `json:"name"`
	// Role is "viewer", "technician" or "admin"; the API decides what each
	// may do.
	Role string `json:"role"`
	// PasswordHash is the bcrypt hash of the password.
	PasswordHash []byte `json:"password_hash,omitempty"`
	// InitialHash is the hash of the password the gateway generated for
	// the first admin and left in a file for the technician. While it
	// equals PasswordHash that password still opens the account, which a
	// start can tell without running bcrypt.
	InitialHash []byte    `json:"initial_hash,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// Token is a bearer token of the REST API. Only a hash of its secret is
// stored, so a copy of the store does not hand out working tokens.
type Token struct {
	// ID is the public half of the token, shown in lists and used to revoke it.
	ID string `json:"id"`
	// SecretHash is the SHA-256 of the secret half.
	SecretHash []byte `json:"secret_hash"`
	// User owns the token; it stops working when the user is removed.
	User string `json:"user"`
	// Role caps what the token may do (at most its user's role).
	Role string `json:"role"`
	// Kind is "session" (from a login) or "api" (long-lived, for scripts).
	Kind string `json:"kind"`
	// Name says what an API token is for.
	Name      string    `json:"name,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when the token stops working; zero means never.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Expired reports whether the token is past its expiry at now.
func (t *Token) Expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

// PutUser creates or replaces a user and reports whether it was created.
// A new password revokes every token of the user in the same transaction.
// It refuses (ErrLastAdmin) to leave the store without an admin.
func (s *Store) PutUser(u User) (created bool, err error) {
	if u.Name == "" || len(u.Name) > MaxSourceLen {
		return false, fmt.Errorf("store: user name must be 1 to %d bytes", MaxSourceLen)
	}
	err = s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bUsers)
		var old User
		created = getJSON(b, "user", u.Name, &old) != nil
		return saveUser(tx, old, u, !created)
	})
	return created, err
}

// UpdateUser applies fn to the stored user in one transaction, with
// PutUser's rules.
func (s *Store) UpdateUser(name string, fn func(*User) error) error {
	return s.update(func(tx *bolt.Tx) error {
		var old User
		if err := getJSON(tx.Bucket(bUsers), "user", name, &old); err != nil {
			return err
		}
		u := old
		u.PasswordHash = slices.Clone(old.PasswordHash)
		if err := fn(&u); err != nil {
			return err
		}
		return saveUser(tx, old, u, true)
	})
}

// saveUser stores u over old (existed says there was one): a changed
// password revokes the user's tokens, and the last admin stays an admin.
func saveUser(tx *bolt.Tx, old, u User, existed bool) error {
	if existed && old.Role == RoleAdminName && u.Role != RoleAdminName {
		if err := keepAnAdmin(tx, u.Name); err != nil {
			return err
		}
	}
	if existed && !bytes.Equal(old.PasswordHash, u.PasswordHash) {
		if err := deleteTokens(tx, func(t *Token) bool { return t.User == u.Name }); err != nil {
			return err
		}
	}
	return putJSON(tx.Bucket(bUsers), u.Name, u)
}

// RoleAdminName is the role that manages users: the store never lets the
// last account that has it lose it.
const RoleAdminName = "admin"

// keepAnAdmin refuses (ErrLastAdmin) when no user but except is an admin.
func keepAnAdmin(tx *bolt.Tx, except string) error {
	others := false
	err := tx.Bucket(bUsers).ForEach(func(k, v []byte) error {
		var u User
		if json.Unmarshal(v, &u) == nil && u.Role == RoleAdminName && string(k) != except {
			others = true
		}
		return nil
	})
	if err == nil && !others {
		err = fmt.Errorf("%w: %q is the only admin", ErrLastAdmin, except)
	}
	return err
}

// User returns the named user, or ErrNotFound.
func (s *Store) User(name string) (u User, err error) {
	err = s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bUsers), "user", name, &u) })
	return u, err
}

// Users returns every user, sorted by name.
func (s *Store) Users() ([]User, error) {
	return listJSON[User](s, bUsers, "user")
}

// DeleteUser removes a user and every token it owns. ErrNotFound if
// absent; ErrLastAdmin if it is the last admin.
func (s *Store) DeleteUser(name string) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bUsers)
		var u User
		if err := getJSON(b, "user", name, &u); err != nil {
			return err
		}
		if u.Role == RoleAdminName {
			if err := keepAnAdmin(tx, name); err != nil {
				return err
			}
		}
		if err := b.Delete([]byte(name)); err != nil {
			return err
		}
		return deleteTokens(tx, func(t *Token) bool { return t.User == name })
	})
}

// PutToken stores a new token. It also deletes session tokens that expired,
// so logins do not grow the store.
func (s *Store) PutToken(t Token, now time.Time) error {
	if t.ID == "" || len(t.SecretHash) == 0 {
		return fmt.Errorf("store: token needs an id and a secret hash")
	}
	return s.update(func(tx *bolt.Tx) error {
		if err := deleteTokens(tx, func(old *Token) bool { return old.Kind == "session" && old.Expired(now) }); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bTokens), t.ID, t)
	})
}

// Token returns the token with the given id, or ErrNotFound.
func (s *Store) Token(id string) (t Token, err error) {
	err = s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bTokens), "token", id, &t) })
	return t, err
}

// Tokens returns every token, sorted by id.
func (s *Store) Tokens() ([]Token, error) {
	return listJSON[Token](s, bTokens, "token")
}

// DeleteToken revokes a token. ErrNotFound if absent.
func (s *Store) DeleteToken(id string) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bTokens)
		if b.Get([]byte(id)) == nil {
			return fmt.Errorf("%w: token %q", ErrNotFound, id)
		}
		return b.Delete([]byte(id))
	})
}

// deleteTokens deletes the tokens for which match returns true.
func deleteTokens(tx *bolt.Tx, match func(*Token) bool) error {
	b := tx.Bucket(bTokens)
	var doomed [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var t Token
		if err := json.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("store: token %q is corrupt: %w", k, err)
		}
		if match(&t) {
			doomed = append(doomed, slices.Clone(k))
		}
		return nil
	})
	for _, k := range doomed {
		if err == nil {
			err = b.Delete(k)
		}
	}
	return err
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

// getJSON decodes the record under key into v; what names the kind of
// record in errors.
func getJSON(b *bolt.Bucket, what, key string, v any) error {
	data := b.Get([]byte(key))
	if data == nil {
		return fmt.Errorf("%w: %s %q", ErrNotFound, what, key)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("store: %s %q is corrupt: %w", what, key, err)
	}
	return nil
}

// listJSON decodes every record of a bucket, in key order.
func listJSON[T any](s *Store, bucket []byte, what string) ([]T, error) {
	var out []T
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			var x T
			if err := json.Unmarshal(v, &x); err != nil {
				return fmt.Errorf("store: %s %q is corrupt: %w", what, k, err)
			}
			out = append(out, x)
			return nil
		})
	})
	return out, err
}
