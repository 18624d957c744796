package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"fieldgate/store/storetest"
)

// TestDiskFullLosesNothing fills the store's filesystem: durable appends must
// fail (no acknowledgement for a reading not on disk), queued readings must be
// held and committed once space is freed, and the file must stay consistent.
func TestDiskFullLosesNothing(t *testing.T) {
	dir := storetest.MountTmpfs(t, "8m")
	opts := Options{Path: filepath.Join(dir, "fieldgate.db"), MaxBytes: 64 << 20, CommitInterval: 10 * time.Millisecond}
	s := mustOpen(t, opts)
	fill(t, s, "before", 100)

	filler := storetest.FillDisk(t, dir)
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
