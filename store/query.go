package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
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

// Readings returns the readings that q selects. It walks the (series, time)
// index, so its cost follows the size of the result, not of the store.
func (s *Store) Readings(q Query) ([]Reading, error) {
	sid, ok := s.series.lookup(SeriesKey{q.Source, q.Quantity})
	if !ok {
		return nil, nil
	}
	var out []Reading
	err := s.view(func(tx *bolt.Tx) error {
		readings := tx.Bucket(bReadings)
		skip := q.Offset
		return scanIndex(tx, sid, q.From, q.To, func(seq uint64, _ []byte) (bool, error) {
			if skip > 0 {
				skip--
				return true, nil
			}
			r, err := s.decode(seq, readings.Get(seqKey(seq)))
			if err != nil {
				return false, err
			}
			out = append(out, r)
			return q.Limit <= 0 || len(out) < q.Limit, nil
		})
	})
	return out, err
}

// Count returns how many readings q's range holds, ignoring Offset and Limit.
func (s *Store) Count(q Query) (int, error) {
	sid, ok := s.series.lookup(SeriesKey{q.Source, q.Quantity})
	if !ok {
		return 0, nil
	}
	n := 0
	err := s.view(func(tx *bolt.Tx) error {
		return scanIndex(tx, sid, q.From, q.To, func(uint64, []byte) (bool, error) {
			n++
			return true, nil
		})
	})
	return n, err
}

// Latest returns the newest reading (by time) of a series.
func (s *Store) Latest(key SeriesKey) (r Reading, ok bool, err error) {
	sid, known := s.series.lookup(key)
	if !known {
		return Reading{}, false, nil
	}
	err = s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bIndex).Cursor()
		prefix := binary.BigEndian.AppendUint32(nil, sid)
		k, _ := c.Seek(binary.BigEndian.AppendUint32(nil, sid+1))
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		if k == nil || !bytes.HasPrefix(k, prefix) {
			return nil
		}
		seq := binary.BigEndian.Uint64(k[12:])
		r, err = s.decode(seq, tx.Bucket(bReadings).Get(seqKey(seq)))
		ok = err == nil
		return err
	})
	return r, ok, err
}

// Series returns every series the store has seen, sorted by source then
// quantity.
func (s *Store) Series() []SeriesKey {
	all := s.series.all()
	out := make([]SeriesKey, 0, len(all))
	for _, k := range all {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b SeriesKey) int {
		if c := strings.Compare(a.Source, b.Source); c != 0 {
			return c
		}
		return strings.Compare(a.Quantity, b.Quantity)
	})
	return out
}

// ReadingsAfter returns up to limit readings with seq greater than after, in
// seq order: the outbox's view of the store.
func (s *Store) ReadingsAfter(after uint64, limit int) ([]Reading, error) {
	var out []Reading
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bReadings).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			r, err := s.decode(binary.BigEndian.Uint64(k), v)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// scanIndex calls fn for each index entry of series sid in [from, to), in
// time order, until fn returns false or an error.
func scanIndex(tx *bolt.Tx, sid uint32, from, to time.Time, fn func(seq uint64, val []byte) (bool, error)) error {
	start := binary.BigEndian.AppendUint32(nil, sid)
	if !from.IsZero() {
		start = binary.BigEndian.AppendUint64(start, timeKey(from))
	}
	end := binary.BigEndian.AppendUint32(nil, sid+1)
	if !to.IsZero() {
		end = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(nil, sid), timeKey(to))
	}
	c := tx.Bucket(bIndex).Cursor()
	for k, v := c.Seek(start); k != nil && bytes.Compare(k, end) < 0; k, v = c.Next() {
		if len(k) != 20 {
			return fmt.Errorf("store: index key of %d bytes is corrupt", len(k))
		}
		more, err := fn(binary.BigEndian.Uint64(k[12:]), v)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// decode turns a stored record into a Reading with its source and quantity.
func (s *Store) decode(seq uint64, v []byte) (Reading, error) {
	if v == nil {
		return Reading{}, fmt.Errorf("store: index points at missing reading %d", seq)
	}
	var r Reading
	sid, err := decodeReading(v, &r)
	if err != nil {
		return Reading{}, fmt.Errorf("store: reading %d: %w", seq, err)
	}
	key, ok := s.series.key(sid)
	if !ok {
		return Reading{}, fmt.Errorf("store: reading %d: unknown series %d", seq, sid)
	}
	r.Seq, r.Source, r.Quantity = seq, key.Source, key.Quantity
	return r, nil
}
