package store

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Query selects one series' readings in a time range, oldest first.
type Query struct {
	Source   string
	Quantity string
	// From and To bound the range [From, To). A zero value is unbounded.
	From, To time.Time
	// Offset skips that many readings of the range; Limit caps the result
	// (0: no cap).
	Offset, Limit int
}

func (q Query) key() SeriesKey { return SeriesKey{q.Source, q.Quantity} }

// Readings returns the readings that q selects. It walks the (series, time)
// index of bbolt and of the head, so its cost follows the size of the
// result, not of the store, in short snapshots (see Walk).
func (s *Store) Readings(q Query) ([]Reading, error) {
	var out []Reading
	err := s.Walk(q, func(r Reading) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

// Count returns how many readings q's range holds, ignoring Offset and
// Limit, in short snapshots: a count over a long series never holds up a
// commit.
func (s *Store) Count(q Query) (int, error) {
	n := 0
	err := s.walk(q, nil, func(*snapshot, entry) (bool, error) {
		n++
		return true, nil
	})
	return n, err
}

// Latest returns the newest reading (by time) of a series.
func (s *Store) Latest(key SeriesKey) (r Reading, ok bool, err error) {
	err = s.read(func(sn *snapshot) error {
		r, ok, err = sn.latest(key)
		return err
	})
	return r, ok, err
}

// Series returns every series the store has seen, sorted by source then
// quantity.
func (s *Store) Series() []SeriesKey {
	all := s.series.all()
	out := make([]SeriesKey, 0, len(all))
	seen := make(map[SeriesKey]bool, len(all))
	for _, k := range all {
		out = append(out, k)
		seen[k] = true
	}
	s.head.mu.RLock()
	for k, ser := range s.head.series {
		if !seen[k] && len(ser.seqs) > 0 {
			out = append(out, k)
		}
	}
	s.head.mu.RUnlock()
	slices.SortFunc(out, func(a, b SeriesKey) int {
		if c := strings.Compare(a.Source, b.Source); c != 0 {
			return c
		}
		return strings.Compare(a.Quantity, b.Quantity)
	})
	return out
}

// ReadingsAfter returns up to limit readings with seq greater than after, in
// seq order (limit 0: all): the outbox's view of the store. It reads in
// short snapshots of walkChunk readings.
func (s *Store) ReadingsAfter(after uint64, limit int) ([]Reading, error) {
	return s.readingsFrom(after, math.MaxUint64, limit)
}

// ReadingsBetween returns the readings with a seq in [first, last], in seq
// order: what a recorded batch holds. Its cost follows the readings there,
// not the span of seqs (a batch may span a gap that drop_oldest left).
func (s *Store) ReadingsBetween(first, last uint64) ([]Reading, error) {
	if first == 0 || last < first {
		return nil, nil
	}
	return s.readingsFrom(first-1, last, 0)
}

// readingsFrom returns up to limit (0: all) readings with a seq in
// (after, through], in short snapshots.
func (s *Store) readingsFrom(after, through uint64, limit int) ([]Reading, error) {
	var out []Reading
	for {
		chunk := walkChunk
		if limit > 0 {
			chunk = min(chunk, limit-len(out))
		}
		n, past := 0, false
		err := s.read(func(sn *snapshot) error {
			return sn.each(after, func(r Reading) (bool, error) {
				if r.Seq > through {
					past = true
					return false, nil
				}
				out = append(out, r)
				after, n = r.Seq, n+1
				return n < chunk, nil
			})
		})
		if err != nil || past || n < chunk || (limit > 0 && len(out) >= limit) {
			return out, err
		}
	}
}

// decode turns a stored record into a Reading with its source and quantity.
func (sn *snapshot) decode(seq uint64, v []byte) (Reading, error) {
	if v == nil {
		return Reading{}, fmt.Errorf("store: index points at missing reading %d", seq)
	}
	var r Reading
	sid, err := decodeReading(v, &r)
	if err != nil {
		return Reading{}, fmt.Errorf("store: reading %d: %w", seq, err)
	}
	key, ok := sn.s.series.keyTx(sn.tx, sid)
	if !ok {
		return Reading{}, fmt.Errorf("store: reading %d: unknown series %d", seq, sid)
	}
	r.Seq, r.Source, r.Quantity = seq, key.Source, key.Quantity
	return r, nil
}
