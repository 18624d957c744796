package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory. It needs
// root; without it the test skips, or fails under FIELDGATE_REQUIRE_ALL=1.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		if os.Getenv("FIELDGATE_REQUIRE_ALL") == "1" {
			t.Fatalf("mount tmpfs (FIELDGATE_REQUIRE_ALL=1 needs root): %v", err)
		}
		t.Skipf("cannot mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fillDisk writes a file until the filesystem is full and returns its path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			break
		}
	}
	if err := f.Close(); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
	return path
}

// TestDiskFullLosesNothing fills the store's filesystem: durable appends must
// fail (no acknowledgement for a reading not on disk), queued readings must be
// held and committed once space is freed, and the file must stay consistent.
func TestDiskFullLosesNothing(t *testing.T) {
	dir := mountTmpfs(t, "8m")
	opts := Options{Path: filepath.Join(dir, "fieldgate.db"), MaxBytes: 64 << 20, CommitInterval: 10 * time.Millisecond}
	s := mustOpen(t, opts)
	fill(t, s, "before", 100)

	filler := fillDisk(t, dir)
	for i := range 50 {
		mustDo(t, s.Enqueue(context.Background(), reading("queued", "temperature", i, float64(i))))
	}
	var appendErr error
	for i := 0; appendErr == nil && i < 200; i++ {
		// Each commit allocates fresh pages; within a few the disk is out.
		appendErr = s.Append(context.Background(), reading("durable", "temperature", i, 1))
	}
	if appendErr == nil {
		t.Fatal("Append kept succeeding on a full disk")
	}
	t.Logf("Append on a full disk: %v", appendErr)
	if st := s.Stats(); st.Err == nil || st.FailingSince.IsZero() {
		t.Errorf("Stats does not report the failing commits: %+v", st)
	}

	mustDo(t, os.Remove(filler))
	// Service resumes by itself: the carried readings go out with the next commit.
	r := []Reading{reading("after", "temperature", 0, 1)}
	deadline := time.Now().Add(10 * time.Second)
	for err := s.Append(context.Background(), r...); err != nil; err = s.Append(context.Background(), r...) {
		if time.Now().After(deadline) {
			t.Fatalf("Append still failing after space was freed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := s.Stats(); st.Err != nil {
		t.Errorf("Stats still reports an error after recovery: %v", st.Err)
	}
	queued, err := s.Readings(Query{Source: "queued", Quantity: "temperature"})
	mustDo(t, err)
	if len(queued) != 50 {
		t.Errorf("%d of 50 queued readings survived the full disk", len(queued))
	}
	dropped, err := s.Dropped()
	mustDo(t, err)
	if n := dropped[reasonCommitFailed]; n != 0 {
		t.Errorf("%d readings dropped", n)
	}
	mustCheck(t, s)
	s = reopen(t, s, opts)
	mustCheck(t, s)
	if n, _ := s.Count(Query{Source: "before", Quantity: "temperature"}); n != 100 {
		t.Errorf("%d of the 100 readings from before the full disk after reopen", n)
	}
}
