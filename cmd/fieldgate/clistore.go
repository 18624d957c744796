package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"fieldgate/store"
)

// openStoreCLI opens the configured store for a management command, with a
// clear message when the running daemon holds it, and returns how to close
// it. An operator runs these commands with sudo while the service runs as
// its own user: whatever the command created in a data directory owned by
// another user (a new log segment, a lock file) is handed to that user at
// close, or the service could not open its own store.
func openStoreCLI(name, configPath string, getenv func(string) string, stderr io.Writer) (*store.Store, func() error, error) {
	var cfgArgs []string
	if configPath != "" {
		cfgArgs = []string{"-config", configPath}
	}
	cfg, err := configFlags(name, cfgArgs, getenv, stderr)
	if err != nil {
		return nil, nil, err
	}
	opts := cfg.storeOptions()
	opts.KeepBoot = true // a command between the daemon's runs leaves clock repair as it was
	st, err := store.Open(opts)
	if errors.Is(err, store.ErrInUse) {
		return nil, nil, fmt.Errorf("%w\nwhile it runs, use the API (docs/api.md); or stop it first (sudo systemctl stop fieldgate)", err)
	}
	if err != nil {
		return nil, nil, err
	}
	return st, func() error { return errors.Join(st.Close(), giveBack(cfg.DataDir)) }, nil
}

// giveBack hands the files root created under dir to dir's owner, when root
// ran the command and someone else owns dir.
func giveBack(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	dir, err := filepath.EvalSymlinks(dir) // systemd's DynamicUser links it into /var/lib/private
	if err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	owner := fi.Sys().(*syscall.Stat_t)
	if owner.Uid == 0 {
		return nil
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Sys().(*syscall.Stat_t).Uid != 0 {
			return nil
		}
		if err := os.Lchown(path, int(owner.Uid), int(owner.Gid)); err != nil {
			return fmt.Errorf("give %s back to the data directory's owner: %w", path, err)
		}
		return nil
	})
}
