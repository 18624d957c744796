package store

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// deleteChunk bounds the readings deleted per transaction, so that retention
// never holds the writer lock for long and checkpoints interleave with it.
const deleteChunk = 5000

// keyRetentionDeleted counts uploaded readings deleted by retention. They
// reached the cloud, so they are not drops; the count is kept for the record.
const keyRetentionDeleted = "retention_deleted"

// span is an inclusive range of sequence numbers.
type span struct{ first, last uint64 }

// frontScan describes a deletion from the oldest readings in bbolt on.
// Readings in the head are never deleted: makeRoom checkpoints first.
type frontScan struct {
	max      int                    // delete at most this many
	uploaded bool                   // only readings the cloud has (uploadedLimit)
	stop     func(t time.Time) bool // stop at the first reading for which it is true
	counter  string                 // counters bucket key to add the count to
}

// deleteFront deletes readings from the oldest on, as described by fs, in
// transactions of at most deleteChunk readings. It returns how many it deleted.
func (s *Store) deleteFront(fs frontScan) (int, error) {
	total := 0
	for total < fs.max {
		n, done, err := s.deleteFrontChunk(fs, min(deleteChunk, fs.max-total))
		total += n
		if err != nil || done {
			return total, err
		}
	}
	return total, nil
}

// deleteFrontChunk deletes up to max readings. What it may delete — the
// cursor's limit, the batches and dead letters to spare — is read in the
// same transaction as the deletes, so a batch recorded meanwhile is never
// cut short. A chunk with nothing to delete commits nothing.
func (s *Store) deleteFrontChunk(fs frontScan, max int) (n int, done bool, err error) {
	type victim struct{ key, idx []byte }
	var victims []victim
	var below int
	pick := func(tx *bolt.Tx) error {
		victims, below, done = nil, 0, false
		meta := tx.Bucket(bMeta)
		limit, acked := getUint(meta, kLastSeq), getUint(meta, kAcked)
		var protect []span
		var err error
		switch {
		case fs.uploaded && s.opts.LocalOnly:
		case fs.uploaded:
			// Delivered: up to the cursor, sparing the dead letters' own
			// spans (their readings wait for a retry), not all that
			// follows the first of them.
			limit = min(limit, acked)
			protect, err = deadLetterSpans(tx)
		default:
			protect, err = protectedSpans(tx)
		}
		if err != nil {
			return err
		}
		c := tx.Bucket(bReadings).Cursor()
		k, v := c.First()
		for k != nil && len(victims) < max {
			seq := binary.BigEndian.Uint64(k)
			if seq > limit {
				break
			}
			for len(protect) > 0 && protect[0].last < seq {
				protect = protect[1:]
			}
			if len(protect) > 0 && protect[0].first <= seq {
				k, v = c.Seek(seqKey(protect[0].last + 1))
				continue
			}
			var r Reading
			sid, err := decodeReading(v, &r)
			if err != nil {
				return fmt.Errorf("store: reading %d: %w", seq, err)
			}
			if fs.stop != nil && fs.stop(r.Time) {
				break
			}
			if seq <= acked {
				below++
			}
			victims = append(victims, victim{key: append([]byte(nil), k...), idx: indexKey(sid, r.Time, seq)})
			k, v = c.Next()
		}
		done = len(victims) < max
		return nil
	}
	if err := s.view(pick); err != nil || len(victims) == 0 {
		return 0, true, err
	}
	err = s.update(func(tx *bolt.Tx) error {
		if err := pick(tx); err != nil || len(victims) == 0 {
			return err
		}
		readings, index, pending := tx.Bucket(bReadings), tx.Bucket(bIndex), tx.Bucket(bClockRepair)
		for _, vi := range victims {
			if err := readings.Delete(vi.key); err != nil {
				return err
			}
			if err := index.Delete(vi.idx); err != nil {
				return err
			}
			if err := pending.Delete(vi.key); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bMeta)
		if err := putUint(meta, kCount, getUint(meta, kCount)-uint64(len(victims))); err != nil {
			return err
		}
		if err := putUint(meta, kBelow, getUint(meta, kBelow)-min(uint64(below), getUint(meta, kBelow))); err != nil {
			return err
		}
		return addCounters(tx, map[string]uint64{fs.counter: uint64(len(victims))})
	})
	if err != nil {
		return 0, true, fmt.Errorf("store: delete old readings: %w", err)
	}
	s.count.Add(-int64(len(victims)))
	return len(victims), done, nil
}

// deleteUploaded deletes up to max of the oldest delivered readings.
func (s *Store) deleteUploaded(max int) (int, error) {
	if max <= 0 {
		return 0, nil
	}
	return s.deleteFront(frontScan{max: max, uploaded: true, counter: keyRetentionDeleted})
}

// deleteOldestUnuploaded is the drop_oldest policy: it deletes up to max of
// the oldest readings, sparing those in recorded batches and dead letters (a
// batch must be resent identically), and counts each as dropped.
func (s *Store) deleteOldestUnuploaded(max int) (int, error) {
	return s.deleteFront(frontScan{max: max, counter: reasonFullDropOldest})
}

// applyRetention deletes delivered readings older than Retention.MaxAge
// and, while the store's data exceeds Retention.MaxSize, the oldest
// delivered ones.
//
// Readings are deleted by age in batches: once the oldest is retainSlack
// past max_age, everything past max_age goes. Every bbolt commit costs the
// SD card a meta page and the freelist (tens of KB on a store that once
// held more); deleting a minute's readings every minute cost more than
// storing them.
func (s *Store) applyRetention() error {
	if s.opts.Retention.MaxAge > 0 {
		if err := s.retainByAge(); err != nil {
			return err
		}
	}
	if s.opts.Retention.MaxSize > 0 {
		if over := s.readingsOver(s.usedBytes(), s.opts.Retention.MaxSize); over > 0 {
			n, err := s.deleteUploaded(over)
			if err != nil {
				return err
			}
			if n > 0 {
				s.log.Info("store: retention deleted uploaded readings by size", "deleted", n, "retain_bytes", s.opts.Retention.MaxSize)
			}
		}
	}
	return nil
}

// retainByAge deletes delivered readings older than Retention.MaxAge, once the
// oldest is retainSlack past it.
func (s *Store) retainByAge() error {
	cutoff := s.opts.Now().Add(-s.opts.Retention.MaxAge)
	due, err := s.oldestBefore(cutoff.Add(-retainSlack(s.opts.Retention.MaxAge)))
	if err != nil || !due {
		return err
	}
	n, err := s.deleteFront(frontScan{
		max: int(^uint(0) >> 1), uploaded: true, counter: keyRetentionDeleted,
		stop: func(t time.Time) bool { return !t.Before(cutoff) },
	})
	if n > 0 {
		s.log.Info("store: retention deleted uploaded readings by age", "deleted", n, "older_than", cutoff.UTC().Format(time.RFC3339))
	}
	return err
}

// retainSlack is how far past max_age the oldest reading may get before
// retention deletes: an hour at a 24 h max_age, less for shorter ones.
func retainSlack(age time.Duration) time.Duration { return min(age/24, time.Hour) }

// oldestBefore reports whether the first reading in bbolt (by seq, about
// the oldest) is older than t.
func (s *Store) oldestBefore(t time.Time) (bool, error) {
	var before bool
	err := s.view(func(tx *bolt.Tx) error {
		k, v := tx.Bucket(bReadings).Cursor().First()
		if k == nil {
			return nil
		}
		var r Reading
		if _, err := decodeReading(v, &r); err != nil {
			return fmt.Errorf("store: reading %d: %w", binary.BigEndian.Uint64(k), err)
		}
		before = r.Time.Before(t)
		return nil
	})
	return before, err
}
