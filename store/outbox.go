package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
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
	// Acked is the cursor: every seq up to it was delivered (or
	// dead-lettered), or holds no reading.
	Acked uint64
	// LastSeq is the newest durable seq.
	LastSeq uint64
	// Batches are recorded and not yet passed by the cursor, by First.
	Batches []Batch
	// DeadLetters are refused batches, by First.
	DeadLetters []DeadLetter
	// HoldFrom, if not 0, is the first reading whose time waits for the
	// clock to sync: no batch may reach it yet (see ClockRepair).
	HoldFrom uint64
	// Unsent counts the stored readings the cloud has not acknowledged:
	// past the cursor, and neither in a batch acknowledged ahead of it nor
	// in a dead letter.
	Unsent uint64
}

// kBelow counts the stored readings at or below the cursor, so that the
// unsent readings are counted without a scan.
var kBelow = []byte("below_cursor")

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
	err := s.read(func(sn *snapshot) error {
		meta := sn.tx.Bucket(bMeta)
		st.Acked = getUint(meta, kAcked)
		st.LastSeq = sn.lastSeq()
		st.HoldFrom = sn.holdFrom()
		if err := sn.tx.Bucket(bOutbox).ForEach(func(k, v []byte) error {
			b, err := decodeBatch(k, v)
			st.Batches = append(st.Batches, b)
			return err
		}); err != nil {
			return err
		}
		if err := sn.tx.Bucket(bDeadLetters).ForEach(func(k, v []byte) error {
			d, err := decodeDeadLetter(k, v)
			st.DeadLetters = append(st.DeadLetters, d)
			return err
		}); err != nil {
			return err
		}
		count := sn.count()
		unsent := count - min(getUint(meta, kBelow), count)
		for _, b := range st.Batches {
			if b.Acked && b.First > st.Acked {
				unsent -= min(uint64(sn.countRange(b.First, b.Last)), unsent)
			}
		}
		for _, d := range st.DeadLetters {
			if d.First > st.Acked {
				unsent -= min(uint64(sn.countRange(d.First, d.Last)), unsent)
			}
		}
		st.Unsent = unsent
		return nil
	})
	return st, err
}

// BatchLimits bound a batch that FormBatch forms.
type BatchLimits struct {
	// MaxReadings caps its readings; 0 means no cap.
	MaxReadings int
	// MaxBytes caps the sum of Size over its readings (the first reading
	// is always taken); 0 means no cap.
	MaxBytes int
	Size     func(*Reading) int
}

// FormBatch forms the next batch in [from, to] and records its bounds, in
// one transaction: it skips what recorded batches and dead letters cover,
// stops short of readings held for clock repair, takes the stored readings
// from there within lim, and records a batch that owns its range from where
// it started — gaps left by deleted readings included, so the cursor can
// always pass them. It returns the batch and its readings, or a zero Batch
// when [from, to] holds nothing more to send, and where the next look in
// this range should start.
func (s *Store) FormBatch(from, to uint64, lim BatchLimits) (Batch, []Reading, uint64, error) {
	var b Batch
	var rs []Reading
	next := from
	err := s.change(func(sn *snapshot) error {
		rs, b = nil, Batch{}
		meta := sn.tx.Bucket(bMeta)
		start := max(from, getUint(meta, kAcked)+1)
		last := min(to, sn.lastSeq())
		if hold := sn.holdFrom(); hold > 0 {
			last = min(last, hold-1)
		}
		spans, err := protectedSpans(sn.tx)
		if err != nil {
			return err
		}
		for next = start; next <= last; {
			hi := last
			for _, sp := range spans {
				if sp.first <= next && next <= sp.last {
					next = sp.last + 1
				} else if sp.first > next {
					hi = min(hi, sp.first-1)
					break
				}
			}
			if next > hi {
				continue
			}
			if rs, err = takeBatch(sn, next, hi, lim); err != nil || len(rs) > 0 {
				break
			}
			next = hi + 1 // no reading left in [next, hi]
		}
		if err != nil || len(rs) == 0 {
			return err
		}
		b = Batch{First: next, Last: rs[len(rs)-1].Seq, Recorded: s.opts.Now()}
		next = b.Last + 1
		return sn.tx.Bucket(bOutbox).Put(seqKey(b.First), encodeBatch(b))
	})
	if err != nil {
		return Batch{}, nil, from, fmt.Errorf("store: form a batch in %d-%d: %w", from, to, err)
	}
	return b, rs, next, nil
}

// takeBatch returns the readings in [from, to] that fit lim.
func takeBatch(sn *snapshot, from, to uint64, lim BatchLimits) ([]Reading, error) {
	var rs []Reading
	size := 0
	err := sn.each(from-1, func(r Reading) (bool, error) {
		if r.Seq > to || (lim.MaxReadings > 0 && len(rs) >= lim.MaxReadings) {
			return false, nil
		}
		if lim.MaxBytes > 0 && lim.Size != nil {
			size += lim.Size(&r)
			if len(rs) > 0 && size > lim.MaxBytes {
				return false, nil
			}
		}
		rs = append(rs, r)
		return true, nil
	})
	return rs, err
}

// AckBatch records that the cloud acknowledged the batch starting at first
// (a recorded batch or a dead letter) and moves the cursor over the
// contiguous prefix of finished batches, in one transaction.
func (s *Store) AckBatch(first uint64) error {
	return s.change(func(sn *snapshot) error {
		if dl := sn.tx.Bucket(bDeadLetters); dl.Get(seqKey(first)) != nil {
			return dl.Delete(seqKey(first))
		}
		ob := sn.tx.Bucket(bOutbox)
		b, err := getBatch(ob, first)
		if err != nil {
			return err
		}
		if b.Last <= getUint(sn.tx.Bucket(bMeta), kAcked) {
			return ob.Delete(seqKey(first)) // a requeued dead letter, below the cursor: done
		}
		b.Acked = true
		if err := ob.Put(seqKey(first), encodeBatch(b)); err != nil {
			return err
		}
		return advanceCursor(sn)
	})
}

// DiscardDeadLetter gives up the dead letter starting at first: its
// readings will never be sent, are counted as dropped, and retention may
// delete them. ErrNotFound if there is none.
func (s *Store) DiscardDeadLetter(first uint64) error {
	return s.change(func(sn *snapshot) error {
		dl := sn.tx.Bucket(bDeadLetters)
		v := dl.Get(seqKey(first))
		if v == nil {
			return fmt.Errorf("%w: no dead letter starts at %d", ErrNotFound, first)
		}
		d, err := decodeDeadLetter(seqKey(first), v)
		if err != nil {
			return err
		}
		if err := dl.Delete(seqKey(first)); err != nil {
			return err
		}
		return addCounters(sn.tx, map[string]uint64{reasonDeadLetterDiscarded: uint64(sn.countRange(d.First, d.Last))})
	})
}

// RequeueDeadLetters makes every dead letter a recorded batch again, sent
// (byte for byte as before) the next time the uplink runs, and returns how
// many there were: a retry of them all, also while the gateway is stopped.
func (s *Store) RequeueDeadLetters() (int, error) {
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		n = 0
		dl, ob := tx.Bucket(bDeadLetters), tx.Bucket(bOutbox)
		var firsts [][]byte
		err := dl.ForEach(func(k, v []byte) error {
			d, err := decodeDeadLetter(k, v)
			if err != nil {
				return err
			}
			if err := ob.Put(k, encodeBatch(Batch{First: d.First, Last: d.Last, Recorded: s.opts.Now()})); err != nil {
				return err
			}
			firsts = append(firsts, slices.Clone(k))
			return nil
		})
		for _, k := range firsts {
			if err == nil {
				err = dl.Delete(k)
			}
		}
		n = len(firsts)
		return err
	})
	return n, err
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
	return s.change(func(sn *snapshot) error {
		ob := sn.tx.Bucket(bOutbox)
		b, err := getBatch(ob, first)
		if err != nil {
			return err
		}
		d, err := json.Marshal(DeadLetter{Last: b.Last, Status: status, Reason: reason, At: s.opts.Now().UTC()})
		if err != nil {
			return err
		}
		if err := sn.tx.Bucket(bDeadLetters).Put(seqKey(first), d); err != nil {
			return err
		}
		if err := ob.Delete(seqKey(first)); err != nil {
			return err
		}
		return advanceCursor(sn)
	})
}

// advanceCursor moves the acked cursor over every batch that starts right
// after it and is acked (removing it) or dead-lettered, and over every range
// that holds no reading up to the next batch: readings deleted by the full
// policy, or sequence numbers a crash left unused.
func advanceCursor(sn *snapshot) error {
	meta := sn.tx.Bucket(bMeta)
	ob, dl := sn.tx.Bucket(bOutbox), sn.tx.Bucket(bDeadLetters)
	acked := getUint(meta, kAcked)
	start := acked
	last := sn.lastSeq()
	for acked < last {
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
			d, err := decodeDeadLetter(k, v)
			if err != nil {
				return err
			}
			acked = d.Last
			continue
		}
		next := last + 1 // where the next batch or dead letter starts
		for _, b := range []*bolt.Bucket{ob, dl} {
			if nk, _ := b.Cursor().Seek(k); nk != nil {
				next = min(next, binary.BigEndian.Uint64(nk))
			}
		}
		if sn.countRange(acked+1, next-1) > 0 {
			break
		}
		acked = next - 1
	}
	if acked == start {
		return nil
	}
	if err := putUint(meta, kBelow, getUint(meta, kBelow)+uint64(sn.countRange(start+1, acked))); err != nil {
		return err
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
	dls, err := deadLetterSpans(tx)
	return mergeSpans(out, dls), err
}

// deadLetterSpans lists, in order, the ranges of the dead letters.
func deadLetterSpans(tx *bolt.Tx) ([]span, error) {
	var dls []span
	err := tx.Bucket(bDeadLetters).ForEach(func(k, v []byte) error {
		d, err := decodeDeadLetter(k, v)
		dls = append(dls, span{d.First, d.Last})
		return err
	})
	return dls, err
}

func decodeDeadLetter(k, v []byte) (DeadLetter, error) {
	var d DeadLetter
	if len(k) != 8 {
		return d, fmt.Errorf("store: dead letter key is corrupt")
	}
	if err := json.Unmarshal(v, &d); err != nil {
		return d, fmt.Errorf("store: dead letter record is corrupt: %w", err)
	}
	d.First = binary.BigEndian.Uint64(k)
	return d, nil
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
