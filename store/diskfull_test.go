package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"fieldgate/store/storetest"
)

// diskFullStore opens a store on a small tmpfs once its log has a spare
// segment ready, so a test controls when the disk fills.
func diskFullStore(t *testing.T, opts Options) (*Store, Options, string) {
	t.Helper()
	dir := storetest.MountTmpfs(t, "8m")
	opts.Path = filepath.Join(dir, "fieldgate.db")
	opts.MaxSize, opts.CommitInterval = 64<<20, 10*time.Millisecond
	s := mustOpen(t, opts)
	waitFor(t, func() bool { return s.wal.Stats().Spare })
	return s, opts, dir
}

// readings makes n readings of source with values from base on.
func readings(source string, base, n int) []Reading {
	rs := make([]Reading, n)
	for i := range rs {
		rs[i] = reading(source, "temperature", base+i, float64(base+i))
	}
	return rs
}

// TestDiskFullDuringCheckpoint fills the disk under a store whose log has
// room: appends are still acknowledged (they are durable in the log's
// preallocated segments), checkpoints fail and keep the readings in the log;
// past twice the head's bounds new readings are refused with ErrBehind.
// Once space is freed the checkpoint goes through and nothing acknowledged
// was lost, also across a reopen.
func TestDiskFullDuringCheckpoint(t *testing.T) {
	s, opts, dir := diskFullStore(t, Options{SegmentSize: 1 << 20, Config: Config{Head: HeadConfig{MaxReadings: 300}}})
	fill(t, s, "before", 100)
	mustCheckpoint(t, s)
	filler := storetest.FillDisk(t, dir)

	acked := 0
	var err error
	for ; err == nil && acked < 2000; acked += 100 {
		if err = s.Append(context.Background(), readings("durable", acked, 100)...); err != nil {
			break
		}
		if cerr := s.checkpoint(); cerr == nil {
			t.Fatal("a checkpoint succeeded on a full disk")
		}
	}
	if !errors.Is(err, ErrBehind) || acked != 600 {
		t.Fatalf("after %d acknowledged readings: %v; want ErrBehind at twice the head's 300", acked, err)
	}
	if st := s.Stats(); st.CheckpointErr == nil || st.HeadReadings != 600 || st.Err == nil {
		t.Errorf("stats do not report the failing checkpoints: %+v", st)
	}
	mustDo(t, os.Remove(filler))
	mustCheckpoint(t, s)
	mustAppend(t, s, readings("after", 0, 1)...)
	if st := s.Stats(); st.Err != nil || st.CheckpointErr != nil {
		t.Errorf("stats still report an error after recovery: %v / %v", st.Err, st.CheckpointErr)
	}
	s = reopen(t, s, opts)
	if n, _ := s.Count(Query{Source: "durable", Quantity: "temperature"}); n != acked {
		t.Errorf("%d of %d acknowledged readings after reopen", n, acked)
	}
	mustCheck(t, s)
}

// TestDiskFullDuringLogWrite fills the disk until the log needs a segment
// it cannot prepare: durable appends fail (no acknowledgement for a reading
// not on disk), queued readings are carried in memory, and once space is
// freed both resume by themselves; nothing acknowledged or queued is lost.
func TestDiskFullDuringLogWrite(t *testing.T) {
	s, opts, dir := diskFullStore(t, Options{SegmentSize: 64 << 10})
	fill(t, s, "before", 100)
	filler := storetest.FillDisk(t, dir)
	acked := 0
	var appendErr error
	for ; acked < 20000; acked += 100 {
		if appendErr = s.Append(context.Background(), readings("durable", acked, 100)...); appendErr != nil {
			break
		}
	}
	if !errors.Is(appendErr, syscall.ENOSPC) {
		t.Fatalf("after %d readings: %v, want ENOSPC once the log needs a new segment", acked, appendErr)
	}
	for i := range 50 {
		mustDo(t, s.Enqueue(context.Background(), reading("queued", "temperature", i, float64(i))))
	}
	if st := s.Stats(); st.Err == nil || st.FailingSince.IsZero() {
		t.Errorf("Stats does not report the failing writes: %+v", st)
	}

	mustDo(t, os.Remove(filler))
	// Service resumes by itself: the spare segment is prepared again and
	// the carried readings go out with the next write.
	deadline := time.Now().Add(10 * time.Second)
	for err := s.Append(context.Background(), readings("after", 0, 1)...); err != nil; err = s.Append(context.Background(), readings("after", 0, 1)...) {
		if time.Now().After(deadline) {
			t.Fatalf("Append still failing after space was freed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, func() bool {
		n, err := s.Count(Query{Source: "queued", Quantity: "temperature"})
		return err == nil && n == 50
	})
	dropped, _, err := s.Removed()
	mustDo(t, err)
	if n := dropped[reasonCommitFailed]; n != 0 {
		t.Errorf("%d readings dropped", n)
	}
	s = reopen(t, s, opts)
	mustCheck(t, s)
	for src, want := range map[string]int{"before": 100, "durable": acked, "queued": 50} {
		if n, _ := s.Count(Query{Source: src, Quantity: "temperature"}); n != want {
			t.Errorf("%s: %d readings after reopen, want %d", src, n, want)
		}
	}
}
