package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// rawSync measures the disk's physical limit for one client: a loop that
// writes 120 bytes (a reading's log record) into a preallocated file in dir
// and fdatasyncs it, as fast as it can, for d. It returns syncs per second.
func rawSync(ctx context.Context, dir string, d time.Duration) (float64, error) {
	f, err := os.CreateTemp(dir, "rawsync-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	const size = 8 << 20
	if _, err := f.Write(make([]byte, size)); err != nil {
		return 0, err
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return 0, fmt.Errorf("fdatasync %s: %w", filepath.Base(f.Name()), err)
	}
	rec := make([]byte, 120)
	n, start := 0, time.Now()
	for off := int64(0); time.Since(start) < d && ctx.Err() == nil; n++ {
		if _, err := f.WriteAt(rec, off); err != nil {
			return 0, err
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return 0, err
		}
		if off += int64(len(rec)); off+int64(len(rec)) > size {
			off = 0
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
