package store

import (
	"fmt"
	"sync"
	"syscall"
	"time"
)

// ingestRate measures readings stored per hour over the last hour (or
// since Open, once a minute has passed), from samples of the newest seq:
// the rate the buffer fills at while the uplink is down.
type ingestRate struct {
	mu      sync.Mutex
	samples []rateSample // oldest first; samples[0] is the window's base
}

type rateSample struct {
	at  time.Time
	seq uint64
}

const (
	rateWindow  = time.Hour
	rateMinSpan = time.Minute // a shorter span says nothing yet
)

// observe records seq at t, at most one sample a minute, and forgets
// samples older than the window (keeping one at its start as the base).
func (r *ingestRate) observe(t time.Time, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.samples); n == 0 || t.Sub(r.samples[n-1].at) >= rateMinSpan {
		r.samples = append(r.samples, rateSample{t, seq})
	}
	for len(r.samples) > 1 && !r.samples[1].at.After(t.Add(-rateWindow)) {
		r.samples = r.samples[1:]
	}
}

// perHour is the rate from the window's base to seq at now; known is
// false until the span reaches a minute.
func (r *ingestRate) perHour(now time.Time, seq uint64) (rate float64, known bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.samples) == 0 {
		return 0, false
	}
	base := r.samples[0]
	span := now.Sub(base.at)
	if span < rateMinSpan || seq < base.seq {
		return 0, false
	}
	return float64(seq-base.seq) / span.Hours(), true
}

// bytesPerReading is what a reading takes in the store file, measured: its
// live bytes over the readings checkpointed into it (0 while it has none).
// Overheads shared by all readings make it pessimistic while the store is
// small.
func (s *Store) bytesPerReading() float64 {
	inBolt := s.count.Load() - int64(s.head.stats().readings)
	if inBolt <= 0 {
		return 0
	}
	return float64(s.boltUsed.Load()) / float64(inBolt)
}

// diskFree is how many bytes the file system holding dir has free for an
// unprivileged writer.
func diskFree(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
