package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/crypto/bcrypt"

	"fieldgate/store"
)

// writeSecret writes a file only its owner may read, as a new file: a
// leftover of that name is removed first, and the file is created with
// O_EXCL|O_NOFOLLOW, so that a symlink planted in the data directory can
// neither redirect the secret nor have it written through.
func writeSecret(path string, data []byte) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the old %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// initialAdminFile is where the first admin's generated password is left.
func initialAdminFile(dataDir string) string { return filepath.Join(dataDir, "initial-admin-password") }

// forgetInitialAdmin removes the first admin's password file once that
// password no longer opens the account (it was changed, or admin was
// removed): a stale secret must not linger on the card. It runs on every
// start, so it compares hashes, not passwords: a start must not pay for a
// bcrypt comparison (tens of milliseconds on a Pi) while the technician has
// not changed the first password. A store from before that mark pays it
// once and is marked.
func forgetInitialAdmin(st *store.Store, dataDir string, log *slog.Logger) {
	path := initialAdminFile(dataDir)
	b, err := os.ReadFile(path)
	if err != nil {
		return // none, or unreadable: nothing to forget
	}
	u, err := st.User("admin")
	switch {
	case errors.Is(err, store.ErrNotFound):
		// admin was removed: the password opens nothing, the file goes
	case err != nil:
		log.Warn("api: could not tell whether the first admin's password is still in use", "file", path, "err", err)
		return
	case len(u.InitialHash) > 0:
		if bytes.Equal(u.InitialHash, u.PasswordHash) {
			return // still the password: the file is how the technician learns it
		}
	case bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(strings.TrimSpace(string(b)))) == nil:
		markInitialAdmin(st, u.PasswordHash, log)
		return
	}
	if err := os.Remove(path); err != nil {
		log.Warn("api: could not remove the first admin's password file", "file", path, "err", err)
		return
	}
	log.Info("api: removed the first admin's password file: the password was changed", "file", path)
}

// markInitialAdmin records that admin's password, of the given hash, is
// still the generated one, unless it changed meanwhile.
func markInitialAdmin(st *store.Store, hash []byte, log *slog.Logger) {
	err := st.UpdateUser("admin", func(u *store.User) error {
		if bytes.Equal(u.PasswordHash, hash) {
			u.InitialHash = hash
		}
		return nil
	})
	if err != nil {
		log.Warn("api: could not mark the first admin's password as still in use", "err", err)
	}
}
