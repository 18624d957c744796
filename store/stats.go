package store

import (
	"os"
	"path/filepath"
	"slices"
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
	// Commits and Committed count syncs of the log and the readings they
	// made durable since Open.
	Commits, Committed uint64
	// LastCommit is when the last sync succeeded (zero if none yet).
	LastCommit time.Time
	// Queued is how many calls wait for the committer.
	Queued int
	// Err is the last write's error while writes fail, and FailingSince
	// when they started failing.
	Err          error
	FailingSince time.Time

	// HeadReadings are durable in the log and not yet checkpointed into
	// bbolt; LogBytes is what the log holds for them, in LogSegments files.
	HeadReadings int
	LogBytes     int64
	LogSegments  int
	// Checkpoints counts checkpoints since Open; LastCheckpoint is when the
	// last one succeeded; CheckpointErr is set while they fail.
	Checkpoints    uint64
	LastCheckpoint time.Time
	CheckpointErr  error
	// TornTails counts places where a power cut caught a write of the log
	// before its sync, found at Open over the store's life: never
	// acknowledged, so nothing was lost.
	TornTails uint64
	// LogCorrupt counts places where the log's synced records were found
	// damaged (bit rot, an unreadable segment header, a record that does
	// not decode), over the store's life; LostReadings the readings known
	// lost there. LogDamage lists the latest places, torn ones included,
	// and Quarantined the damaged segment files kept as evidence.
	LogCorrupt   uint64
	LostReadings uint64
	LogDamage    []LogDamage
	Quarantined  []string
	// LogBroken is set while a failed write or sync of the log is being
	// recovered (see ErrLogBroken); LogRecoveries counts recoveries since
	// Open. Failed is set once the store failed (see ErrFailed).
	LogBroken     error
	LogRecoveries int
	Failed        error

	// IngestPerHour is readings stored per hour over the last hour (since
	// Open if shorter); IngestKnown is false until a minute has passed.
	IngestPerHour float64
	IngestKnown   bool
	// BytesPerReading is what a stored reading takes in the store file,
	// measured (0 while nothing is checkpointed into it).
	BytesPerReading float64
	// DiskFree is the free space of the store's file system.
	DiskFree int64
}

// Stats returns a snapshot of the store's state.
func (s *Store) Stats() Stats {
	ws := s.wal.Stats()
	st := Stats{
		GatewayID:    s.gatewayID,
		Readings:     s.count.Load(),
		LastSeq:      s.lastSeq.Load(),
		UsedBytes:    s.usedBytes(),
		MaxBytes:     s.opts.MaxSize,
		Commits:      s.c.commits.Load(),
		Committed:    s.c.committed.Load(),
		Queued:       len(s.c.slots),
		HeadReadings: s.head.stats().readings,
		LogBytes:     ws.LiveBytes,
		LogSegments:  ws.Segments,

		BytesPerReading: s.bytesPerReading(),
		TornTails:       s.damage.torn,
		LogCorrupt:      s.damage.corrupt,
		LostReadings:    s.damage.lost,
		LogDamage:       slices.Clone(s.damage.places),
		Quarantined:     ws.Quarantined,
		LogBroken:       ws.Broken,
		LogRecoveries:   ws.Recoveries,
	}
	if err := s.broken.Load(); err != nil {
		st.Failed = *err
	}
	// 0, unknown, if the file system cannot say.
	st.DiskFree, _ = diskFree(filepath.Dir(s.opts.Path))
	s.ckpt.mu.Lock()
	st.Checkpoints, st.LastCheckpoint, st.CheckpointErr = s.ckpt.count, s.ckpt.last, s.ckpt.err
	s.ckpt.mu.Unlock()
	st.IngestPerHour, st.IngestKnown = s.rate.perHour(s.opts.Now(), st.LastSeq)
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
