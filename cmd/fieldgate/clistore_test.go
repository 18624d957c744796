package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"fieldgate/cmd/fieldgate/daemontest"
)

// An operator adds a device with sudo while the data directory belongs to
// the service's user: files the command created were root's, and the
// service could not open its own store. They are handed back.
func TestCLIAsRootLeavesTheStoreToItsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		if daemontest.RequireAll() {
			t.Fatal("acting as root needs root (FIELDGATE_REQUIRE_ALL=1)")
		}
		t.Skip("acting as root needs root")
	}
	const service = 65534 // nobody, standing in for the unit's user
	dir := filepath.Join(t.TempDir(), "fieldgate")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, service, service); err != nil {
		t.Fatal(err)
	}
	cfg := daemontest.WriteConfig(t, fmt.Sprintf("data_dir: %s\n", dir))
	var out bytes.Buffer
	for _, args := range [][]string{{"device", "add", "esp-kitchen"}, {"user", "add", "maria", "-role", "technician"}} {
		if err := run(context.Background(), append(append([]string{"fieldgate"}, args...), "-config", cfg), envMap(nil), &out, &out); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out.String())
		}
	}
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files++
		if st := info.Sys().(*syscall.Stat_t); st.Uid != service || st.Gid != service {
			t.Errorf("%s belongs to %d:%d, want the data directory's owner", path, st.Uid, st.Gid)
		}
		return nil
	})
	if err != nil || files < 2 {
		t.Fatalf("walked %d files: %v", files, err)
	}
}
