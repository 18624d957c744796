package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Batch is a range of readings recorded in the outbox before its first send,
// so that a resend after a crash carries exactly the same readings.
type Batch struct {
	First, Last uint64
	// Acked says the cloud acknowledged it but an earlier batch is still
	// outstanding, so the cursor cannot move past it yet.
	Acked bool
	// Recorded is when the bounds were written.
	Recorded time.Time
}

// DeadLetter is a batch the cloud refused permanently (a 4xx other than
// 401/403/408/413/429). Its readings are kept until it is retried and acked.
type DeadLetter struct {
	First  uint64    `json:"-"`
	Last   uint64    `json:"last"`
	Status int       `json:"status"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// OutboxState is where the upload stands.
type OutboxState struct {
	// Acked is the cursor: every seq up to it was delivered (or dead-lettered).
	Acked uint64
	// LastSeq is the newest seq stored.
	LastSeq uint64
	// Batches are recorded and not yet passed by the cursor, by First.
	Batches []Batch
	// DeadLetters are refused batches, by First.
	DeadLetters []DeadLetter
	// HoldFrom, if not 0, is the first reading whose time waits for the
	// clock to sync: no batch may reach it yet (see ClockRepair).
	HoldFrom uint64
}

func encodeBatch(b Batch) []byte {
	v := binary.BigEndian.AppendUint64(nil, b.Last)
	v = binary.BigEndian.AppendUint64(v, uint64(b.Recorded.UnixNano()))
	if b.Acked {
		return append(v, 1)
	}
	return append(v, 0)
}

func decodeBatch(k, v []byte) (Batch, error) {
	if len(k) != 8 || len(v) != 17 {
		return Batch{}, fmt.Errorf("store: outbox record is corrupt")
	}
	return Batch{
		First:    binary.BigEndian.Uint64(k),
		Last:     binary.BigEndian.Uint64(v),
		Recorded: time.Unix(0, int64(binary.BigEndian.Uint64(v[8:]))).UTC(),
		Acked:    v[16] == 1,
	}, nil
}

// getBatch returns the recorded batch starting at first, or ErrNotFound.
func getBatch(ob *bolt.Bucket, first uint64) (Batch, error) {
	v := ob.Get(seqKey(first))
	if v == nil {
		return Batch{}, fmt.Errorf("%w: no batch starts at %d", ErrNotFound, first)
	}
	return decodeBatch(seqKey(first), v)
}

// Outbox returns the upload state: cursor, recorded batches and dead letters.
func (s *Store) Outbox() (OutboxState, error) {
	var st OutboxState
	err := s.view(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		st.Acked = getUint(meta, kAcked)
		st.LastSeq = getUint(meta, kLastSeq)
		st.HoldFrom = holdFrom(tx)
		if err := tx.Bucket(bOutbox).ForEach(func(k, v []byte) error {
			b, err := decodeBatch(k, v)
			st.Batches = append(st.Batches, b)
			return err
		}); err != nil {
			return err
		}
		return tx.Bucket(bDeadLetters).ForEach(func(k, v []byte) error {
			var d DeadLetter
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("store: dead letter record is corrupt: %w", err)
			}
			d.First = binary.BigEndian.Uint64(k)
			st.DeadLetters = append(st.DeadLetters, d)
			return nil
		})
	})
	return st, err
}

// RecordBatch writes a batch's bounds before its first send. The range must
// hold stored readings past the cursor and overlap no recorded batch or dead
// letter (ErrOverlap).
func (s *Store) RecordBatch(first, last uint64) error {
	return s.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		if first == 0 || last < first || first <= getUint(meta, kAcked) || last > getUint(meta, kLastSeq) {
			return fmt.Errorf("%w: batch %d-%d is outside the un-acked readings", ErrOverlap, first, last)
		}
		spans, err := protectedSpans(tx)
		if err != nil {
			return err
		}
		for _, sp := range spans {
			if first <= sp.last && sp.first <= last {
				return fmt.Errorf("%w: batch %d-%d overlaps %d-%d", ErrOverlap, first, last, sp.first, sp.last)
			}
		}
		return tx.Bucket(bOutbox).Put(seqKey(first), encodeBatch(Batch{First: first, Last: last, Recorded: s.opts.Now()}))
	})
}

// AckBatch records that the cloud acknowledged the batch starting at first
// (a recorded batch or a dead letter) and moves the cursor over the
// contiguous prefix of finished batches, in one transaction.
func (s *Store) AckBatch(first uint64) error {
	return s.update(func(tx *bolt.Tx) error {
		if dl := tx.Bucket(bDeadLetters); dl.Get(seqKey(first)) != nil {
			return dl.Delete(seqKey(first))
		}
		ob := tx.Bucket(bOutbox)
		b, err := getBatch(ob, first)
		if err != nil {
			return err
		}
		b.Acked = true
		if err := ob.Put(seqKey(first), encodeBatch(b)); err != nil {
			return err
		}
		return advanceCursor(tx)
	})
}

// SplitBatch replaces the recorded batch starting at first with two,
// [first, mid] and [mid+1, last], in one transaction: the cloud refused it as
// too large (413), so neither half was ever acknowledged, and both halves are
// recorded before they are sent, like any batch.
func (s *Store) SplitBatch(first, mid uint64) error {
	return s.update(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bOutbox)
		b, err := getBatch(ob, first)
		if err != nil {
			return err
		}
		if b.Acked || mid < first || mid >= b.Last {
			return fmt.Errorf("store: cannot split batch %d-%d at %d", b.First, b.Last, mid)
		}
		now := s.opts.Now()
		if err := ob.Put(seqKey(first), encodeBatch(Batch{First: first, Last: mid, Recorded: now})); err != nil {
			return err
		}
		return ob.Put(seqKey(mid+1), encodeBatch(Batch{First: mid + 1, Last: b.Last, Recorded: now}))
	})
}

// DeadLetterBatch moves the batch starting at first to the dead letters with
// the cloud's status and reason; the cursor may then pass it.
func (s *Store) DeadLetterBatch(first uint64, status int, reason string) error {
	return s.update(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bOutbox)
		b, err := getBatch(ob, first)
		if err != nil {
			return err
		}
		d, err := json.Marshal(DeadLetter{Last: b.Last, Status: status, Reason: reason, At: s.opts.Now().UTC()})
		if err != nil {
			return err
		}
		if err := tx.Bucket(bDeadLetters).Put(seqKey(first), d); err != nil {
			return err
		}
		if err := ob.Delete(seqKey(first)); err != nil {
			return err
		}
		return advanceCursor(tx)
	})
}

// advanceCursor moves the acked cursor over every batch that starts right
// after it and is acked (removing it) or dead-lettered.
func advanceCursor(tx *bolt.Tx) error {
	meta := tx.Bucket(bMeta)
	ob, dl := tx.Bucket(bOutbox), tx.Bucket(bDeadLetters)
	acked := getUint(meta, kAcked)
	start := acked
	for {
		k := seqKey(acked + 1)
		if v := ob.Get(k); v != nil {
			b, err := decodeBatch(k, v)
			if err != nil {
				return err
			}
			if !b.Acked {
				break
			}
			if err := ob.Delete(k); err != nil {
				return err
			}
			acked = b.Last
			continue
		}
		if v := dl.Get(k); v != nil {
			var d DeadLetter
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("store: dead letter record is corrupt: %w", err)
			}
			acked = d.Last
			continue
		}
		break
	}
	if acked == start {
		return nil
	}
	return putUint(meta, kAcked, acked)
}

// protectedSpans lists, in order, the ranges held by recorded batches and
// dead letters: readings there must stay until delivered.
func protectedSpans(tx *bolt.Tx) ([]span, error) {
	var out []span
	err := tx.Bucket(bOutbox).ForEach(func(k, v []byte) error {
		b, err := decodeBatch(k, v)
		out = append(out, span{b.First, b.Last})
		return err
	})
	if err != nil {
		return nil, err
	}
	var dls []span
	err = tx.Bucket(bDeadLetters).ForEach(func(k, v []byte) error {
		var d DeadLetter
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("store: dead letter record is corrupt: %w", err)
		}
		dls = append(dls, span{binary.BigEndian.Uint64(k), d.Last})
		return nil
	})
	return mergeSpans(out, dls), err
}

// mergeSpans merges two sorted lists of disjoint spans.
func mergeSpans(a, b []span) []span {
	out := make([]span, 0, len(a)+len(b))
	for len(a) > 0 || len(b) > 0 {
		if len(b) == 0 || (len(a) > 0 && a[0].first < b[0].first) {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return out
}
