package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"fieldgate/store/storetest"
)

// model is a plain in-memory account of what the store must hold: the
// readings by seq, the outbox, what was checkpointed and what waits for
// clock repair. TestModel compares the store with it after every step.
type model struct {
	rs         map[uint64]Reading
	last       uint64 // newest durable seq
	acked      uint64 // outbox cursor
	batches    map[uint64]*mBatch
	ckpt       uint64 // readings up to here are in bbolt
	pending    map[uint64]time.Duration
	repairFrom uint64
}

type mBatch struct {
	last  uint64
	acked bool
}

func newModel() *model {
	return &model{rs: map[uint64]Reading{}, batches: map[uint64]*mBatch{}, pending: map[uint64]time.Duration{}}
}

// stored adds readings the store acknowledged (or made durable).
func (m *model) stored(rs []Reading) {
	for _, r := range rs {
		m.rs[r.Seq] = r
		m.last = max(m.last, r.Seq)
		if r.Clock == ClockUnsynced && r.Mono > 0 && r.Seq >= m.repairFrom {
			m.pending[r.Seq] = r.Mono
		}
	}
}

func (m *model) seqs() []uint64 { return slices.Sorted(maps.Keys(m.rs)) }

func (m *model) inBatch(seq uint64) bool {
	for first, b := range m.batches {
		if first <= seq && seq <= b.last {
			return true
		}
	}
	return false
}

func (m *model) holdFrom() uint64 {
	if len(m.pending) == 0 {
		return 0
	}
	return slices.Min(slices.Collect(maps.Keys(m.pending)))
}

// formBatch is FormBatch by the book: skip what batches cover, stop short
// of held readings, take up to n readings, own the range from its start.
func (m *model) formBatch(from, to uint64, n int) (first, last uint64, rs []Reading) {
	start, end := max(from, m.acked+1), min(to, m.last)
	if h := m.holdFrom(); h > 0 {
		end = min(end, h-1)
	}
	firsts := slices.Sorted(maps.Keys(m.batches))
	for next := start; next <= end; {
		hi := end
		for _, f := range firsts {
			if f <= next && next <= m.batches[f].last {
				next = m.batches[f].last + 1
			} else if f > next {
				hi = min(hi, f-1)
				break
			}
		}
		if next > hi {
			continue
		}
		for _, seq := range m.seqs() {
			if seq >= next && seq <= hi && len(rs) < n {
				rs = append(rs, m.rs[seq])
			}
		}
		if len(rs) > 0 {
			m.batches[next] = &mBatch{last: rs[len(rs)-1].Seq}
			return next, rs[len(rs)-1].Seq, rs
		}
		next = hi + 1
	}
	return 0, 0, nil
}

// ack acknowledges the batch at first and moves the cursor over finished
// batches and over ranges without readings.
func (m *model) ack(first uint64) {
	m.batches[first].acked = true
	for m.acked < m.last {
		if b := m.batches[m.acked+1]; b != nil {
			if !b.acked {
				return
			}
			delete(m.batches, m.acked+1)
			m.acked = b.last
			continue
		}
		next := m.last + 1
		for f := range m.batches {
			if f > m.acked {
				next = min(next, f)
			}
		}
		for seq := range m.rs {
			if seq > m.acked && seq < next {
				return
			}
		}
		m.acked = next - 1
	}
}

// deleteOldest deletes up to n of the oldest checkpointed readings up to
// limit, sparing batches if spare is set.
func (m *model) deleteOldest(n int, limit uint64, spare bool) int {
	deleted := 0
	for _, seq := range m.seqs() {
		if deleted == n || seq > min(limit, m.ckpt) {
			break
		}
		if spare && m.inBatch(seq) {
			continue
		}
		delete(m.rs, seq)
		delete(m.pending, seq)
		deleted++
	}
	return deleted
}

func (m *model) repair(bootWall time.Time) int {
	n := 0
	for seq, mono := range m.pending {
		r, ok := m.rs[seq]
		if ok && !m.inBatch(seq) && seq > m.acked {
			r.Time, r.Clock = bootWall.Add(mono).UTC(), ClockSynced
			m.rs[seq] = r
			n++
		}
	}
	clear(m.pending)
	return n
}

func (m *model) unsent() uint64 {
	n := uint64(0)
	for seq := range m.rs {
		if seq <= m.acked {
			continue
		}
		done := false
		for f, b := range m.batches {
			done = done || (b.acked && f <= seq && seq <= b.last)
		}
		if !done {
			n++
		}
	}
	return n
}

// series lists the model's series keys.
func (m *model) series() []SeriesKey {
	set := map[SeriesKey]bool{}
	for _, r := range m.rs {
		set[SeriesKey{r.Source, r.Quantity}] = true
	}
	return slices.Collect(maps.Keys(set))
}

// query is the model's answer to Readings(q).
func (m *model) query(q Query) []Reading {
	var out []Reading
	for _, r := range m.rs {
		if r.Source == q.Source && r.Quantity == q.Quantity && (q.From.IsZero() || !r.Time.Before(q.From)) && (q.To.IsZero() || r.Time.Before(q.To)) {
			r.Mono = 0
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Reading) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return int(a.Seq) - int(b.Seq)
	})
	return out
}

// summarize reduces rs, in (time, seq) order, to one Summary per step.
func summarize(rs []Reading, step time.Duration) []Summary {
	var out []Summary
	for _, r := range rs {
		start := r.Time.Truncate(step)
		if n := len(out); n == 0 || !out[n-1].Start.Equal(start) {
			out = append(out, Summary{Start: start, Min: r.Value, Max: r.Value})
		}
		x := &out[len(out)-1]
		x.Count++
		x.Avg += r.Value // the sum until the end
		x.Min, x.Max = min(x.Min, r.Value), max(x.Max, r.Value)
		if r.Clock == ClockUnsynced {
			x.Unsynced++
		}
	}
	for i := range out {
		out[i].Avg /= float64(out[i].Count)
	}
	return out
}

func sameSummary(a, b Summary) bool {
	return a.Start.Equal(b.Start) && a.Count == b.Count && a.Min == b.Min && a.Max == b.Max &&
		a.Unsynced == b.Unsynced && math.Abs(a.Avg-b.Avg) <= 1e-9*max(1, math.Abs(b.Avg))
}

// check compares every read of the store with the model.
func (m *model) check(t *testing.T, s *Store, step int, op string) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("step %d (%s): "+format, append([]any{step, op}, args...)...)
	}
	all, err := s.ReadingsAfter(0, 0)
	mustDo(t, err)
	want := m.seqs()
	if len(all) != len(want) {
		fail("ReadingsAfter(0) holds %d readings, the model %d", len(all), len(want))
	}
	for i, r := range all {
		w := m.rs[want[i]]
		r.Mono, w.Mono = 0, 0
		if !sameStored(r, w) {
			fail("reading %d is %v, the model says %v", i, r, w)
		}
	}
	if int64(len(want)) != s.Stats().Readings {
		fail("Stats().Readings %d, model %d", s.Stats().Readings, len(want))
	}
	for _, key := range m.series() {
		q := Query{Source: key.Source, Quantity: key.Quantity}
		got, err := s.Readings(q)
		mustDo(t, err)
		exp := m.query(q)
		if len(got) != len(exp) {
			fail("Readings(%v) = %d readings, model %d", key, len(got), len(exp))
		}
		for i := range got {
			got[i].Mono = 0
			if !sameStored(got[i], exp[i]) {
				fail("Readings(%v)[%d] = %v, model %v", key, i, got[i], exp[i])
			}
		}
		latest, ok, err := s.Latest(key)
		mustDo(t, err)
		latest.Mono = 0
		if !ok || !sameStored(latest, exp[len(exp)-1]) {
			fail("Latest(%v) = %v, model %v", key, latest, exp[len(exp)-1])
		}
		mid := exp[len(exp)/2].Time
		q.From, q.To = mid, mid.Add(time.Hour)
		if n, _ := s.Count(q); n != len(m.query(q)) {
			fail("Count(%v from %s) = %d, model %d", key, mid, n, len(m.query(q)))
		}
		sum, err := s.Summarize(Query{Source: key.Source, Quantity: key.Quantity}, time.Minute)
		mustDo(t, err)
		if want := summarize(exp, time.Minute); !slices.EqualFunc(sum, want, sameSummary) {
			fail("Summarize(%v) = %+v, model %+v", key, sum, want)
		}
	}
	ob, err := s.Outbox()
	mustDo(t, err)
	if ob.Acked != m.acked || ob.LastSeq != m.last || len(ob.Batches) != len(m.batches) || ob.HoldFrom != m.holdFrom() || ob.Unsent != m.unsent() {
		fail("Outbox = acked %d last %d batches %d hold %d unsent %d; model %d %d %d %d %d",
			ob.Acked, ob.LastSeq, len(ob.Batches), ob.HoldFrom, ob.Unsent, m.acked, m.last, len(m.batches), m.holdFrom(), m.unsent())
	}
	cr, err := s.ClockRepair()
	mustDo(t, err)
	if cr.Pending != len(m.pending) {
		fail("ClockRepair().Pending = %d, model %d", cr.Pending, len(m.pending))
	}
}

// TestModel runs random sequences of appends (waited and queued),
// checkpoints, uplink batches and acknowledgements, retention and the full
// policy, clock repair, clean closes and power cuts, and compares every
// read of the store with the model after each step.
func TestModel(t *testing.T) {
	t.Parallel() // the three long randomized suites share the CPUs
	seed := rand.Uint64()
	if env := os.Getenv("FIELDGATE_MODEL_SEED"); env != "" { // to replay a failure
		var err error
		if seed, err = strconv.ParseUint(env, 10, 64); err != nil {
			t.Fatalf("FIELDGATE_MODEL_SEED: %v", err)
		}
	}
	t.Logf("seed %d (FIELDGATE_MODEL_SEED replays it)", seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	fs := storetest.NewCrashFS(rand.New(rand.NewPCG(seed, 12)))
	opts := Options{anyTiming: true, Path: filepath.Join(t.TempDir(), "model.db"), LogFS: fs.Process(), BootID: "boot-1", SegmentSize: 64 << 10,
		MaintenanceInterval: time.Hour, Config: Config{CommitInterval: time.Hour, Head: HeadConfig{MaxReadings: 1 << 30, MaxBytes: 1 << 40, MaxAge: time.Hour}},
	}
	s, err := Open(opts)
	mustDo(t, err)
	defer func() { _ = s.Close() }()
	m := newModel()
	value := 0.0
	mk := func(n int) []Reading {
		rs := make([]Reading, n)
		for i := range rs {
			value++
			rs[i] = Reading{Source: fmt.Sprintf("node-%d", rng.IntN(3)), Quantity: []string{"temperature", "humidity"}[rng.IntN(2)],
				Value: value, Unit: "Cel", Time: t0.Add(time.Duration(rng.IntN(7200)) * time.Second)}
			if rng.IntN(8) == 0 {
				rs[i].Clock, rs[i].Mono = ClockUnsynced, time.Duration(1+rng.IntN(1000))*time.Second
			}
		}
		return rs
	}
	steps := 1500 / raceScale
	if testing.Short() {
		steps = 300
	}
	for step := range steps {
		var op string
		switch p := rng.IntN(100); {
		case p < 20:
			op = "append"
			rs := mk(1 + rng.IntN(5))
			mustDo(t, s.Append(context.Background(), rs...))
			m.stored(rs)
		case p < 30:
			op = "append then"
			// Several calls in flight at once, led or not; each done must
			// come once its readings are synced, in call order.
			calls := make([][]Reading, 1+rng.IntN(4))
			dones := make(chan int, len(calls))
			for i := range calls {
				calls[i] = mk(1 + rng.IntN(5))
				mustDo(t, s.AppendThen(context.Background(), calls[i], Lead(rng.IntN(2) == 0), func(err error) {
					if err != nil {
						t.Errorf("step %d: AppendThen: %v", step, err)
					}
					dones <- i
				}, nil))
			}
			for i := range calls {
				if got := <-dones; got != i {
					t.Fatalf("step %d: done of call %d came as the %d-th", step, got, i+1)
				}
				for j := range calls[i] {
					calls[i][j].Seq = m.last + 1 + uint64(j)
				}
				m.stored(calls[i])
			}
		case p < 40:
			op = "enqueue"
			rs := mk(1 + rng.IntN(5))
			mustDo(t, s.Enqueue(context.Background(), rs...))
			mustDo(t, s.Ping(context.Background())) // the queued readings are synced
			for i := range rs {
				rs[i].Seq = m.last + 1 + uint64(i)
			}
			m.stored(rs)
		case p < 48:
			op = "checkpoint"
			mustCheckpoint(t, s)
			m.ckpt = m.last
		case p < 60:
			op = "form batch"
			from := m.acked + 1 + uint64(rng.IntN(20))
			n := 1 + rng.IntN(10)
			b, rs, _, err := s.FormBatch(from, ^uint64(0), BatchLimits{MaxReadings: n})
			mustDo(t, err)
			first, last, want := m.formBatch(from, ^uint64(0), n)
			if b.First != first || b.Last != last || len(rs) != len(want) {
				t.Fatalf("step %d: FormBatch(%d) = %d-%d (%d readings); model %d-%d (%d)", step, from, b.First, b.Last, len(rs), first, last, len(want))
			}
		case p < 72:
			op = "ack"
			if len(m.batches) > 0 {
				firsts := slices.Sorted(maps.Keys(m.batches))
				f := firsts[rng.IntN(len(firsts))]
				if !m.batches[f].acked {
					mustDo(t, s.AckBatch(f))
					m.ack(f)
				}
			}
		case p < 78:
			op = "retention"
			n := rng.IntN(20)
			got, err := s.deleteUploaded(n)
			mustDo(t, err)
			if want := m.deleteOldest(n, m.acked, false); got != want {
				t.Fatalf("step %d: deleteUploaded(%d) = %d, model %d", step, n, got, want)
			}
		case p < 81:
			op = "drop oldest"
			n := rng.IntN(10)
			got, err := s.deleteOldestUnuploaded(n)
			mustDo(t, err)
			if want := m.deleteOldest(n, ^uint64(0), true); got != want {
				t.Fatalf("step %d: deleteOldestUnuploaded(%d) = %d, model %d", step, n, got, want)
			}
		case p < 84:
			op = "repair clock"
			bootWall := t0.Add(time.Duration(rng.IntN(48)) * time.Hour)
			inHead := false // a reading waits in the head: the repair checkpoints it first
			for seq := range m.pending {
				inHead = inHead || seq > m.ckpt
			}
			got, err := s.RepairClock(bootWall)
			mustDo(t, err)
			if want := m.repair(bootWall); got != want {
				t.Fatalf("step %d: RepairClock = %d, model %d", step, got, want)
			}
			if inHead {
				m.ckpt = m.last
			}
		case p < 86:
			op = "abandon repair"
			if _, err := s.AbandonClockRepair(); err != nil {
				t.Fatal(err)
			}
			clear(m.pending)
			m.repairFrom = m.last + 1
		case p < 92:
			op = "close and reopen"
			mustDo(t, s.Close())
			opts.LogFS = fs.Process()
			s, err = Open(opts)
			mustDo(t, err)
			m.ckpt = m.last
		case p < 94:
			op = "failed sync"
			// One fdatasync fails: that Append is not acknowledged, its
			// readings are voided once the committer recovered the log
			// (Ping fails until then), and writes go on above their seqs.
			failSegmentSync(fs)
			if err := s.Append(context.Background(), mk(1+rng.IntN(3))...); !errors.Is(err, ErrLogBroken) {
				t.Fatalf("step %d: Append over a failing sync: %v", step, err)
			}
			waitFor(t, func() bool { return s.Ping(context.Background()) == nil })
			rs := mk(1)
			mustDo(t, s.Append(context.Background(), rs...))
			m.stored(rs)
		default:
			op = "power cut"
			// One more queued write may or may not survive; a process that
			// dies leaves it in the page cache, for a later cut to take
			// unless replay synced it.
			extra := mk(1)
			mustDo(t, s.Enqueue(context.Background(), extra...))
			if rng.IntN(2) == 0 {
				op = "crash"
				fs.Crash()
			} else {
				fs.PowerCut()
			}
			s.abandon()
			opts.LogFS = fs.Process()
			s, err = Open(opts)
			mustDo(t, err)
			if r, ok := lastReading(t, s); ok && r.Value == extra[0].Value {
				extra[0].Seq = r.Seq
				m.stored(extra)
			}
		}
		m.check(t, s, step, op)
	}
	mustCheck(t, s)
}

// lastReading returns the store's newest reading by seq.
func lastReading(t *testing.T, s *Store) (Reading, bool) {
	all, err := s.ReadingsAfter(s.Stats().LastSeq-1, 1)
	mustDo(t, err)
	if len(all) == 0 {
		return Reading{}, false
	}
	return all[0], true
}

// abandon stops the store as a crash would: no final sync, no checkpoint;
// after storetest.CrashFS.PowerCut, nothing more reaches the log.
func (s *Store) abandon() {
	close(s.maintStop)
	<-s.maintDone
	_ = s.c.close()   // its syncs fail on the dead file handles
	_ = s.wal.Close() // likewise
	_ = s.db.Close()  // bbolt's commits were complete and synced
	s.closeOnce.Do(func() {})
}

// sameStored is sameReading with the seq too.
func sameStored(a, b Reading) bool { return a.Seq == b.Seq && sameReading(a, b) }
