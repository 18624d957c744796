// Package storetest helps tests put a store in trouble: a tiny filesystem
// that can be filled and freed, for disk-full tests of the store and of the
// daemon around it, and an in-memory file system for the write-ahead log
// that loses power the way a disk does (CrashFS).
package storetest

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"fieldgate/cmd/fieldgate/testenv"
)

// MountTmpfs mounts a tmpfs of the given size ("8m") on a fresh directory,
// unmounted at the end of the test. It needs root: without it the test is
// skipped, or fails under FIELDGATE_REQUIRE_ALL=1.
func MountTmpfs(tb testing.TB, size string) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		testenv.Unavailable(tb, "cannot mount a tmpfs (needs root): %v", err)
	}
	tb.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			tb.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// FillDisk writes a file in dir until its filesystem is full and returns
// the file's path; removing it frees the space.
func FillDisk(tb testing.TB, dir string) string {
	tb.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				tb.Fatalf("filling the disk: %v", err)
			}
			break
		}
	}
	if err := f.Close(); err != nil && !errors.Is(err, syscall.ENOSPC) {
		tb.Fatal(err)
	}
	return path
}
