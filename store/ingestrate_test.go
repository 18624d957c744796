package store

import (
	"math"
	"sync"
	"testing"
	"time"
)

// The rate the buffer fills at and what a reading takes in it are measured
// from the store, for the autonomy the status reports.
func TestIngestRateAndBytesPerReading(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s := mustOpen(t, Options{Now: clock})

	fill(t, s, "a", 600)
	if st := s.Stats(); st.IngestKnown || st.BytesPerReading != 0 {
		t.Errorf("before a minute passed and before a checkpoint: %v/h, %v B; want both unknown (0)", st.IngestPerHour, st.BytesPerReading)
	}
	if st := s.Stats(); st.DiskFree <= 0 {
		t.Errorf("disk free %d", st.DiskFree)
	}
	advance(10 * time.Minute)
	if st := s.Stats(); !st.IngestKnown || st.IngestPerHour != 3600 {
		got := st.IngestPerHour
		t.Errorf("600 readings in 10 minutes: %v/h, want 3600", got)
	}
	mustCheckpoint(t, s)
	s.refreshUsed()
	if per := s.Stats().BytesPerReading; per <= 0 || per > 4096 {
		t.Errorf("bytes per reading %v", per)
	}

	// The window is the last hour: a burst long ago stops counting.
	for range 120 {
		advance(time.Minute)
		s.rate.observe(clock(), s.lastSeq.Load()) // what maintenance does every second
	}
	fill(t, s, "b", 60)
	if got := s.Stats().IngestPerHour; math.Abs(got-60) > 1 {
		t.Errorf("60 readings in the last hour, 600 two hours ago: %v/h, want 60", got)
	}
}
