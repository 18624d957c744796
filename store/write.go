package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// estBytesPerReading is a conservative estimate of the pages one reading
// occupies (record, index entry, B+tree overhead) used to decide, before a
// commit, whether it fits under the hard cap.
const estBytesPerReading = 96

// commitSlack covers what a commit allocates besides its readings' share:
// branch pages split along the way, new series, the meta page.
const commitSlack = 32 << 10

// write commits rs in one transaction, assigning consecutive sequence
// numbers, and returns the first. It applies the full-store policy first.
// Only the committer calls it.
func (s *Store) write(rs []Reading, drops *dropCounter) (first uint64, err error) {
	if len(rs) == 0 {
		return 0, nil
	}
	if err := s.makeRoom(len(rs)); err != nil {
		return 0, err
	}
	st := s.series.begin()
	var persisted map[string]uint64
	var last uint64
	err = s.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		readings := tx.Bucket(bReadings)
		readings.FillPercent = 0.95 // keys only ever grow: pack pages full
		index := tx.Bucket(bIndex)
		pending := tx.Bucket(bClockRepair)
		seq := getUint(meta, kLastSeq)
		first = seq + 1
		for i := range rs {
			r := &rs[i]
			sid, err := st.id(tx, SeriesKey{r.Source, r.Quantity})
			if err != nil {
				return err
			}
			seq++
			if err := readings.Put(seqKey(seq), encodeReading(nil, sid, r)); err != nil {
				return err
			}
			if err := index.Put(indexKey(sid, r.Time, seq), indexValue(r)); err != nil {
				return err
			}
			if err := s.notePending(pending, seq, r); err != nil {
				return err
			}
		}
		last = seq
		if err := putUint(meta, kLastSeq, seq); err != nil {
			return err
		}
		if err := putUint(meta, kCount, getUint(meta, kCount)+uint64(len(rs))); err != nil {
			return err
		}
		persisted, err = drops.persist(tx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: commit %d readings: %w", len(rs), err)
	}
	st.publish()
	drops.forget(persisted)
	s.lastSeq.Store(last)
	s.count.Add(int64(len(rs)))
	return first, nil
}

// makeRoom keeps the store under its hard cap before n readings are added:
// it deletes uploaded readings first, then applies the full policy to
// un-uploaded ones (drop_oldest deletes and counts them, reject_new refuses
// the commit with ErrFull). It frees a little more than needed so that it
// does not run on every commit once the store is full.
func (s *Store) makeRoom(n int) error {
	used := s.usedBytes()
	per := int64(estBytesPerReading)
	if cnt := s.count.Load(); cnt > 0 && used/cnt > per {
		per = used / cnt
	}
	need := int64(n)*per + commitSlack
	limit := s.opts.MaxBytes
	if used+need <= limit {
		return nil
	}
	target := limit - limit/20 - need // 5% hysteresis
	excess := s.readingsOver(used, target)
	freed, err := s.deleteUploaded(excess)
	if err != nil {
		return err
	}
	if freed >= excess {
		return nil
	}
	if s.opts.FullPolicy == FullRejectNew {
		return fmt.Errorf("%w: %s of data reached the %s cap and nothing uploaded is left to delete", ErrFull, fmtSize(used), fmtSize(limit))
	}
	dropped, err := s.deleteOldestUnuploaded(excess - freed)
	if err != nil {
		return err
	}
	s.log.Warn("store: full; dropped the oldest un-uploaded readings (policy drop_oldest)", "dropped", dropped, "cap", fmtSize(limit))
	if dropped == 0 && freed == 0 {
		return fmt.Errorf("%w: %s used, cap %s, and nothing can be deleted", ErrFull, fmtSize(used), fmtSize(limit))
	}
	return nil
}

// readingsOver estimates how many readings must go to bring used to target.
func (s *Store) readingsOver(used, target int64) int {
	cnt := s.count.Load()
	if cnt <= 0 || used <= target {
		return 0
	}
	per := used / cnt
	if per < 1 {
		per = 1
	}
	return int((used-target)/per) + 1
}

// usedBytes is the file's size less its free pages: the data the store holds.
func (s *Store) usedBytes() int64 {
	var size int64
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	if s.closed {
		return 0
	}
	_ = s.db.View(func(tx *bolt.Tx) error { // a read transaction cannot fail here
		size = tx.Size()
		return nil
	})
	st := s.db.Stats()
	return size - int64(st.FreePageN+st.PendingPageN)*int64(s.db.Info().PageSize)
}
