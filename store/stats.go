package store

import (
	"os"
	"time"
)

// Stats is a snapshot of the store for status pages, metrics and health.
type Stats struct {
	GatewayID string
	// Readings is how many readings the store holds; LastSeq the newest seq.
	Readings int64
	LastSeq  uint64
	// FileBytes is the file's size, UsedBytes the part holding live data.
	FileBytes, UsedBytes int64
	// MaxBytes is the hard cap.
	MaxBytes int64
	// Commits and Committed count transactions and readings since Open.
	Commits, Committed uint64
	// LastCommit is when the last commit succeeded (zero if none yet).
	LastCommit time.Time
	// Queued is how many calls wait for the committer.
	Queued int
	// Err is the last commit's error while commits fail, and FailingSince
	// when they started failing.
	Err          error
	FailingSince time.Time
}

// Stats returns a snapshot of the store's state.
func (s *Store) Stats() Stats {
	st := Stats{
		GatewayID: s.gatewayID,
		Readings:  s.count.Load(),
		LastSeq:   s.lastSeq.Load(),
		UsedBytes: s.usedBytes(),
		MaxBytes:  s.opts.MaxBytes,
		Commits:   s.c.commits.Load(),
		Committed: s.c.committed.Load(),
		Queued:    len(s.c.reqs),
	}
	if fi, err := os.Stat(s.opts.Path); err == nil {
		st.FileBytes = fi.Size()
	}
	if ns := s.c.lastCommitNs.Load(); ns != 0 {
		st.LastCommit = time.Unix(0, ns).UTC()
	}
	s.c.errMu.Lock()
	st.Err, st.FailingSince = s.c.lastErr, s.c.failingSince
	s.c.errMu.Unlock()
	return st
}
