package store

import (
	"math"
	"time"
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
	var out []Summary
	var sum float64
	width := int64(step)
	cur := (*Summary)(nil)
	var curStart, curEnd int64 // the step [curStart, curEnd) holding cur
	err := s.walk(q, nil, func(_ *snapshot, e entry) (bool, error) {
		if cur == nil || e.t >= curEnd { // a new step (times come in order): only then divide
			if start := e.t - ((e.t%width)+width)%width; cur == nil || start != curStart { // floor, also before 1970
				if cur != nil {
					cur.Avg = sum / float64(cur.Count)
				}
				out = append(out, Summary{Start: time.Unix(0, start).UTC(), Min: e.v, Max: e.v})
				cur, curStart, sum = &out[len(out)-1], start, 0
				curEnd = math.MaxInt64 // the last step's end, past the last time
				if start <= math.MaxInt64-width {
					curEnd = start + width
				}
			}
		}
		cur.Count++
		sum += e.v
		if e.v < cur.Min {
			cur.Min = e.v
		} else if e.v > cur.Max {
			cur.Max = e.v
		}
		if e.clock == ClockUnsynced {
			cur.Unsynced++
		}
		return true, nil
	})
	if cur != nil {
		cur.Avg = sum / float64(cur.Count)
	}
	return out, err
}

// Walk calls fn with every reading q's range selects, oldest first, reading
// the store in short snapshots. fn runs outside any transaction. Offset
// and Limit are honoured; an error from fn stops the walk and is returned.
func (s *Store) Walk(q Query, fn func(Reading) error) error {
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
	return s.walk(q, flush, func(sn *snapshot, e entry) (bool, error) {
		if skip > 0 {
			skip--
			return true, nil
		}
		if q.Limit > 0 && n >= q.Limit {
			return false, nil
		}
		n++
		r, err := sn.fetch(e)
		buf = append(buf, r)
		return true, err
	})
}

// walk calls visit for every reading of q's series in [q.From, q.To), in
// (time, seq) order, walkChunk readings per snapshot, and flush (if not
// nil) after each snapshot, until visit returns false or an error. visit
// runs inside the snapshot.
func (s *Store) walk(q Query, flush func() error, visit func(*snapshot, entry) (bool, error)) error {
	pos := scanFrom(q.From)
	for {
		more := false
		err := s.read(func(sn *snapshot) (err error) {
			pos, more, err = sn.scan(q.key(), pos, q.To, walkChunk, visit)
			return err
		})
		if err == nil && flush != nil {
			err = flush()
		}
		if err != nil || !more {
			return err
		}
		if testHookBetweenChunks != nil {
			testHookBetweenChunks()
		}
	}
}

// testHookBetweenChunks, set by tests, runs between two snapshots of a
// walk, with no lock held.
var testHookBetweenChunks func()
