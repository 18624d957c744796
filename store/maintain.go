package store

import (
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"
)

// maintain runs the store's background work: checkpoints when the head
// reaches a bound, room-making when the store reaches its cap (both also
// when the committer pokes), and retention and the compaction check every
// MaintenanceInterval.
func (s *Store) maintain() {
	defer close(s.maintDone)
	periodic := time.NewTicker(s.opts.MaintenanceInterval)
	defer periodic.Stop()
	check := time.NewTicker(time.Second)
	defer check.Stop()
	for {
		full := false
		select {
		case <-s.maintStop:
			return
		case <-s.maint:
		case <-check.C:
		case <-periodic.C:
			full = true
		}
		s.maintainOnce(full)
	}
}

// maintainOnce does what is due; periodic adds retention and compaction.
func (s *Store) maintainOnce(periodic bool) {
	s.rate.observe(s.opts.Now(), s.lastSeq.Load())
	if s.checkpointDue(s.opts.Now()) {
		_ = s.checkpoint() // noted and retried by noteCheckpoint
	}
	if s.overCap(0) || s.full.Load() {
		if err := s.makeRoom(0); err != nil {
			s.log.Error("store: making room failed", "err", err)
		}
	}
	if !periodic {
		return
	}
	if err := s.applyRetention(); err != nil {
		s.log.Error("store: retention failed", "err", err)
	}
	switch err := s.compactIfBloated(); {
	case errors.Is(err, ErrCompactionYielded):
		s.log.Info("store: compaction gave way to checkpoints; it is tried again later")
	case err != nil:
		s.log.Error("store: compaction failed", "err", err)
	}
}

// overCap reports whether the store's data, need bytes more, would exceed
// MaxSize (by the last measure of bbolt).
func (s *Store) overCap(need int64) bool {
	return s.dataBytes(s.boltUsed.Load())+need > s.opts.MaxSize
}

// dataBytes is the store's data given boltUsed, the live data in bbolt:
// the head's readings count at what they will take in bbolt once
// checkpointed. (The log's own files are not data: they add at most the
// head's bounds and two segments on disk.)
func (s *Store) dataBytes(boltUsed int64) int64 {
	head := int64(s.head.stats().readings)
	per := int64(estBytesPerReading)
	if inBolt := s.count.Load() - head; inBolt > 0 && boltUsed/inBolt > per {
		per = boltUsed / inBolt
	}
	return boltUsed + head*per
}

// makeRoom keeps the store under its hard cap with need more bytes: it
// checkpoints the head so that everything is in bbolt, deletes uploaded
// readings, then applies the full policy to un-uploaded ones (drop_oldest
// deletes and counts them, reject_new makes the committer refuse new
// readings with ErrFull until room appears). It frees 5% more than needed
// so that it does not run on every write once the store is full.
func (s *Store) makeRoom(need int64) error {
	limit := s.opts.MaxSize
	used := s.usedBytes()
	if used+need <= limit {
		s.full.Store(false)
		return nil
	}
	if err := s.checkpoint(); err != nil {
		return err
	}
	if used = s.usedBytes(); used+need <= limit {
		s.full.Store(false)
		return nil
	}
	excess := s.readingsOver(used, limit-limit/20-need)
	freed, err := s.deleteUploaded(excess)
	if err != nil {
		return err
	}
	if freed >= excess || s.usedBytes()+need <= limit {
		s.full.Store(false)
		return nil
	}
	if s.opts.FullPolicy == FullRejectNew {
		if !s.full.Swap(true) {
			s.log.Warn("store: full; refusing new readings until uploads free room (policy reject_new)", "cap", fmtSize(limit))
		}
		return nil
	}
	dropped, err := s.deleteOldestUnuploaded(excess - freed)
	if err != nil {
		return err
	}
	s.log.Warn("store: full; dropped the oldest un-uploaded readings (policy drop_oldest)", "dropped", dropped, "cap", fmtSize(limit))
	return nil
}

// readingsOver estimates how many readings must go to bring used to target.
func (s *Store) readingsOver(used, target int64) int {
	cnt := s.count.Load()
	if cnt <= 0 || used <= target {
		return 0
	}
	per := max(used/cnt, 1)
	return int((used-target)/per) + 1
}

// refreshUsed measures the bbolt data (the file's size less its free
// pages), caches it for overCap and returns it.
func (s *Store) refreshUsed() int64 {
	var size int64
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	if s.closed != nil {
		return 0
	}
	_ = s.db.View(func(tx *bolt.Tx) error { // a read transaction cannot fail here
		size = tx.Size()
		return nil
	})
	st := s.db.Stats()
	used := size - int64(st.FreePageN+st.PendingPageN)*int64(s.db.Info().PageSize)
	s.boltUsed.Store(used)
	return used
}

// usedBytes measures the data the store holds, head included.
func (s *Store) usedBytes() int64 { return s.dataBytes(s.refreshUsed()) }
