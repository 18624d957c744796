package store

import (
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// estBytesPerReading is a conservative estimate of the bytes one reading
// takes in the log and then in bbolt (record, index entry, B+tree
// overhead), used to decide before a write whether it fits under the cap.
const estBytesPerReading = 96

// ckptState is what the maintainer and Stats know of checkpoints.
type ckptState struct {
	mu      sync.Mutex
	count   uint64
	last    time.Time
	err     error
	errAt   time.Time
	retryAt time.Time
	// progress is closed (and replaced) whenever a checkpoint moved
	// readings out of the head, or failed: a commit waiting for room in
	// the head looks again.
	progress chan struct{}
}

// signal wakes whoever waits for checkpoint progress. s.mu is held.
func (c *ckptState) signal() {
	if c.progress != nil {
		close(c.progress)
	}
	c.progress = make(chan struct{})
}

// checkpoint moves the head into bbolt in transactions of at most MaxBatch
// readings, dropping each chunk from the head once it is committed, then
// releases the log segments that held only checkpointed readings.
func (s *Store) checkpoint() error {
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	moved := 0
	for {
		rs := s.headChunk(s.opts.MaxBatch)
		if len(rs) == 0 {
			break
		}
		if err := s.checkpointChunk(rs); err != nil {
			s.noteCheckpoint(err)
			return err
		}
		s.head.dropThrough(rs[len(rs)-1].Seq, s.opts.Now())
		moved += len(rs)
		s.ckpt.mu.Lock()
		s.ckpt.signal()
		s.ckpt.mu.Unlock()
	}
	var ckpt uint64
	if err := s.view(func(tx *bolt.Tx) error { ckpt = getUint(tx.Bucket(bMeta), kLastSeq); return nil }); err != nil {
		return err
	}
	if err := s.wal.Release(ckpt); err != nil {
		s.log.Warn("store: releasing log segments", "err", err)
	}
	s.refreshUsed()
	if moved > 0 {
		s.noteCheckpoint(nil)
	}
	return nil
}

// headChunk copies up to n of the head's oldest readings.
func (s *Store) headChunk(n int) []Reading {
	s.head.mu.RLock()
	defer s.head.mu.RUnlock()
	out := make([]Reading, min(n, s.head.rs.len()))
	for i := range out {
		out[i] = s.head.reading(s.head.rs.at(i))
	}
	return out
}

// checkpointChunk writes rs into bbolt in one transaction and moves the
// checkpoint to the last of them.
func (s *Store) checkpointChunk(rs []Reading) error {
	st := s.series.begin()
	var persisted map[string]uint64
	err := s.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		readings := tx.Bucket(bReadings)
		readings.FillPercent = 0.95 // keys only ever grow: pack pages full
		index := tx.Bucket(bIndex)
		index.FillPercent = 0.9 // each series' keys grow at its own end
		pending := tx.Bucket(bClockRepair)
		ckpt := getUint(meta, kLastSeq)
		// bbolt holds keys and values until the transaction ends: the
		// chunk's share one arena, an allocation per chunk instead of five
		// per reading.
		size := 0
		for i := range rs {
			size += maxRecordLen(&rs[i])
		}
		arena := make([]byte, 0, size)
		n := uint64(0)
		for i := range rs {
			r := &rs[i]
			if r.Seq <= ckpt {
				continue // a chunk retried after a commit it did not hear of
			}
			sid, err := st.id(tx, SeriesKey{r.Source, r.Quantity})
			if err != nil {
				return err
			}
			at := len(arena)
			arena = appendSeqKey(arena, r.Seq)
			key := carve(arena, at)
			at = len(arena)
			arena = encodeReading(arena, sid, r)
			if err := readings.Put(key, carve(arena, at)); err != nil {
				return err
			}
			at = len(arena)
			arena = appendIndexKey(arena, sid, r.Time, r.Seq)
			ikey := carve(arena, at)
			at = len(arena)
			arena = appendIndexValue(arena, r)
			if err := index.Put(ikey, carve(arena, at)); err != nil {
				return err
			}
			if s.repairable(r) {
				at = len(arena)
				arena = appendSeqKey(arena, uint64(r.Mono))
				if err := pending.Put(key, carve(arena, at)); err != nil {
					return err
				}
			}
			n++
		}
		if err := putUint(meta, kLastSeq, max(ckpt, rs[len(rs)-1].Seq)); err != nil {
			return err
		}
		if err := putUint(meta, kCount, getUint(meta, kCount)+n); err != nil {
			return err
		}
		var err error
		persisted, err = s.c.drops.persist(tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: checkpoint %d readings: %w", len(rs), err)
	}
	st.publish()
	s.c.drops.forget(persisted)
	return nil
}

// noteCheckpoint records how the last checkpoint went; a failure is logged
// once while they keep failing and retried after a backoff.
func (s *Store) noteCheckpoint(err error) {
	s.ckpt.mu.Lock()
	defer s.ckpt.mu.Unlock()
	now := s.opts.Now()
	if err == nil {
		if s.ckpt.err != nil {
			s.log.Info("store: checkpoints succeed again", "failing_for", now.Sub(s.ckpt.errAt).Round(time.Second))
		}
		s.ckpt.count++
		s.ckpt.last, s.ckpt.err, s.ckpt.retryAt = now, nil, time.Time{}
		return
	}
	if s.ckpt.err == nil {
		s.log.Error("store: checkpoint failed; readings stay in the log and the head", "err", err)
		s.ckpt.errAt = now
	}
	wait := time.Second
	if prev := s.ckpt.retryAt.Sub(s.ckpt.errAt); s.ckpt.err != nil && prev > 0 {
		wait = min(2*prev, 30*time.Second)
	}
	s.ckpt.err, s.ckpt.retryAt = err, now.Add(wait)
	s.ckpt.signal()
}

// checkpointDue reports whether the head has reached one of its bounds.
func (s *Store) checkpointDue(now time.Time) bool {
	h := s.head.stats()
	if h.readings == 0 {
		return false
	}
	s.ckpt.mu.Lock()
	retryAt := s.ckpt.retryAt
	s.ckpt.mu.Unlock()
	if now.Before(retryAt) {
		return false
	}
	return h.readings >= s.opts.Head.MaxReadings || s.wal.Stats().LiveBytes >= s.opts.Head.MaxBytes ||
		!now.Before(h.since.Add(s.opts.Head.MaxAge))
}

// admit is called by the committer before it writes n readings. The
// leader must not do maintenance (a checkpoint that waits behind a
// compaction or a long read), or every PUBACK waits with it: it never
// checkpoints. If the readings would take the store over its cap, the
// leader makes room first, as the full policy says — work on the ingest
// path, but only on a full store, and not while a compaction holds the
// file (then the maintainer makes room once it is done). Past twice the
// head's bounds it waits for the maintainer's checkpoints. It reports why
// the readings must be refused, or nil: the store is full under
// reject_new, or the head stays at twice its bounds because checkpoints
// fail or do not catch up.
func (s *Store) admit(n int) error {
	need := int64(n) * estBytesPerReading
	if s.full.Load() || s.overCap(need) {
		if s.compacting.Load() {
			s.poke()
		} else if err := s.makeRoom(need); err != nil {
			s.log.Error("store: making room failed", "err", err)
		}
	}
	if s.full.Load() && s.opts.FullPolicy == FullRejectNew {
		return fmt.Errorf("%w: the %s cap is reached and nothing uploaded is left to delete", ErrFull, fmtSize(s.opts.MaxSize))
	}
	// Past twice the head's bounds, ingest has outrun the checkpoints: the
	// leader waits for the maintainer to catch up (back-pressure, as a
	// full queue is), up to behindWait, and refuses if checkpoints fail.
	deadline := s.opts.Now().Add(behindWait)
	for {
		h := s.head.stats()
		if !s.headOverfull(h) {
			return nil
		}
		s.poke()
		s.ckpt.mu.Lock()
		err, progress := s.ckpt.err, s.ckpt.progress
		s.ckpt.mu.Unlock()
		if err == nil && s.opts.Now().After(deadline) {
			err = fmt.Errorf("checkpoints did not catch up within %s", behindWait)
		}
		if err != nil {
			return fmt.Errorf("%w (%d readings wait in memory): %v", ErrBehind, h.readings, err)
		}
		select {
		case <-progress:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// behindWait bounds how long a commit waits for checkpoints to catch up.
const behindWait = 10 * time.Second

// headOverfull reports whether the head holds twice its bounds (written
// so that it cannot overflow on 32 bits).
func (s *Store) headOverfull(h headStats) bool {
	return h.readings-s.opts.Head.MaxReadings >= s.opts.Head.MaxReadings || s.wal.Stats().LiveBytes-s.opts.Head.MaxBytes >= s.opts.Head.MaxBytes
}

// headGrew is called after every sync: it wakes the maintainer when the
// head reached a bound.
func (s *Store) headGrew() {
	h := s.head.stats()
	if h.readings >= s.opts.Head.MaxReadings || s.wal.Stats().LiveBytes >= s.opts.Head.MaxBytes {
		s.poke()
	}
}

// poke wakes the maintainer.
func (s *Store) poke() {
	select {
	case s.maint <- struct{}{}:
	default:
	}
}
