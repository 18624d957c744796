package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// walkChunk is how many index entries one read transaction visits during a
// walk, so a long export or summary never holds a read transaction (and
// with it the file's old pages) for long.
const walkChunk = 4096

// Summary is the min, mean and max of one series over one step of time.
type Summary struct {
	// Start is the beginning of the step, a multiple of the step since the
	// Unix epoch.
	Start         time.Time
	Count         int
	Min, Avg, Max float64
	// Unsynced counts readings whose time came from an unsynchronised clock.
	Unsynced int
}

// Summarize returns q's readings reduced to one Summary per step that holds
// any, oldest first, without decoding a single reading: values come from the
// index. q.Offset and q.Limit are ignored.
func (s *Store) Summarize(q Query, step time.Duration) ([]Summary, error) {
	if step <= 0 {
		step = time.Hour
	}
	sid, ok := s.series.lookup(SeriesKey{q.Source, q.Quantity})
	if !ok {
		return nil, nil
	}
	var out []Summary
	var sum float64
	width := int64(step)
	cur := (*Summary)(nil)
	curStart := int64(math.MinInt64)
	err := s.walkIndex(sid, q.From, q.To, nil, func(_ *bolt.Tx, k, v []byte) error {
		ns := int64(binary.BigEndian.Uint64(k[4:12]) ^ (1 << 63))
		start := ns - ((ns%width)+width)%width // floor, also before 1970
		val := math.Float64frombits(binary.BigEndian.Uint64(v))
		if start != curStart {
			if cur != nil {
				cur.Avg = sum / float64(cur.Count)
			}
			out = append(out, Summary{Start: time.Unix(0, start).UTC(), Min: val, Max: val})
			cur, curStart, sum = &out[len(out)-1], start, 0
		}
		cur.Count++
		sum += val
		if val < cur.Min {
			cur.Min = val
		} else if val > cur.Max {
			cur.Max = val
		}
		if len(v) > 8 && Clock(v[8]) == ClockUnsynced {
			cur.Unsynced++
		}
		return nil
	})
	if cur != nil {
		cur.Avg = sum / float64(cur.Count)
	}
	return out, err
}

// Walk calls fn with every reading q's range selects, oldest first, reading
// the store in short transactions. fn runs outside any transaction. Offset
// and Limit are honoured; an error from fn stops the walk and is returned.
func (s *Store) Walk(q Query, fn func(Reading) error) error {
	sid, ok := s.series.lookup(SeriesKey{q.Source, q.Quantity})
	if !ok {
		return nil
	}
	skip, n := q.Offset, 0
	var buf []Reading
	flush := func() error {
		for _, r := range buf {
			if err := fn(r); err != nil {
				return err
			}
		}
		buf = buf[:0]
		return nil
	}
	return s.walkIndex(sid, q.From, q.To, flush, func(tx *bolt.Tx, k, _ []byte) error {
		if skip > 0 {
			skip--
			return nil
		}
		if q.Limit > 0 && n >= q.Limit {
			return errStopWalk
		}
		n++
		seq := binary.BigEndian.Uint64(k[12:])
		r, err := s.decode(seq, tx.Bucket(bReadings).Get(seqKey(seq)))
		buf = append(buf, r)
		return err
	})
}

// errStopWalk ends a walk early without an error.
var errStopWalk = errors.New("stop walk")

// walkIndex calls visit for every index entry of series sid in [from, to),
// walkChunk entries per read transaction, and flush (if not nil) after each
// transaction. visit runs inside the transaction; it may return errStopWalk.
func (s *Store) walkIndex(sid uint32, from, to time.Time, flush func() error, visit func(tx *bolt.Tx, k, v []byte) error) error {
	start := binary.BigEndian.AppendUint32(nil, sid)
	if !from.IsZero() {
		start = binary.BigEndian.AppendUint64(start, timeKey(from))
	}
	end := binary.BigEndian.AppendUint32(nil, sid+1)
	if !to.IsZero() {
		end = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(nil, sid), timeKey(to))
	}
	for {
		seen, stop := 0, false
		err := s.view(func(tx *bolt.Tx) error {
			c := tx.Bucket(bIndex).Cursor()
			for k, v := c.Seek(start); k != nil && bytes.Compare(k, end) < 0; k, v = c.Next() {
				if seen == walkChunk {
					start = slices.Clone(k)
					return nil
				}
				if len(k) != 20 {
					return fmt.Errorf("store: index key of %d bytes is corrupt", len(k))
				}
				seen++
				if err := visit(tx, k, v); err != nil {
					return err
				}
			}
			stop = true
			return nil
		})
		if errors.Is(err, errStopWalk) {
			stop, err = true, nil
		}
		if err == nil && flush != nil {
			err = flush()
		}
		if err != nil || stop {
			return err
		}
	}
}
