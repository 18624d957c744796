package main

import (
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
// password no longer opens the account (it was changed): a stale secret
// must not linger on the card.
func forgetInitialAdmin(st *store.Store, dataDir string, log *slog.Logger) {
	path := initialAdminFile(dataDir)
	b, err := os.ReadFile(path)
	if err != nil {
		return // none, or unreadable: nothing to forget
	}
	u, err := st.User("admin")
	if err == nil && bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(strings.TrimSpace(string(b)))) == nil {
		return // still the password: the file is how the technician learns it
	}
	if err := os.Remove(path); err != nil {
		log.Warn("api: could not remove the first admin's password file", "file", path, "err", err)
		return
	}
	log.Info("api: removed the first admin's password file: the password was changed", "file", path)
}
