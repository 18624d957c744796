package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	s := mustOpen(t, Options{})
	var rs []Reading
	for i := range 180 { // three minutes, one reading per second
		rs = append(rs, reading("a", "temperature", i, float64(i%60)))
	}
	u := reading("a", "temperature", 200, 1000)
	u.Clock = ClockUnsynced
	rs = append(rs, u, reading("a", "humidity", 0, 50))
	mustAppend(t, s, rs...)

	got, err := s.Summarize(Query{Source: "a", Quantity: "temperature", From: t0.Add(30 * time.Second)}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := []Summary{
		{Start: t0, Count: 30, Min: 30, Avg: 44.5, Max: 59},
		{Start: t0.Add(time.Minute), Count: 60, Min: 0, Avg: 29.5, Max: 59},
		{Start: t0.Add(2 * time.Minute), Count: 60, Min: 0, Avg: 29.5, Max: 59},
		{Start: t0.Add(3 * time.Minute), Count: 1, Min: 1000, Avg: 1000, Max: 1000, Unsynced: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d summaries %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if !got[i].Start.Equal(want[i].Start) || got[i].Count != want[i].Count || got[i].Min != want[i].Min ||
			got[i].Avg != want[i].Avg || got[i].Max != want[i].Max || got[i].Unsynced != want[i].Unsynced {
			t.Errorf("summary %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if none, err := s.Summarize(Query{Source: "nope", Quantity: "temperature"}, time.Minute); err != nil || none != nil {
		t.Errorf("unknown series: %v, %v", none, err)
	}
}

func TestWalkCrossesChunks(t *testing.T) {
	s := mustOpen(t, Options{})
	n := 2*walkChunk + 17
	fill(t, s, "a", n)
	seqs := walkSeqs(t, s)
	if len(seqs) != n {
		t.Fatalf("walked %d readings, want %d", len(seqs), n)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("seq %d after %d: out of order", seqs[i], seqs[i-1])
		}
	}
	// Offset and Limit across a chunk boundary.
	var page []Reading
	err := s.Walk(Query{Source: "a", Quantity: "temperature", Offset: walkChunk - 2, Limit: 5}, func(r Reading) error {
		page = append(page, r)
		return nil
	})
	if err != nil || len(page) != 5 || page[0].Seq != seqs[walkChunk-2] {
		t.Fatalf("page = %d readings starting %v, %v", len(page), page, err)
	}
	stop := errors.New("stop")
	calls := 0
	err = s.Walk(Query{Source: "a", Quantity: "temperature"}, func(Reading) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("fn error: %v after %d calls, want stop after 1", err, calls)
	}
}

// TestWalkMergesFileAndHead: every other second checkpointed into bbolt,
// the rest in the head; a walk over several chunks and a summary visit
// each reading once, in time order.
func TestWalkMergesFileAndHead(t *testing.T) {
	s := mustOpen(t, Options{})
	n := 2*walkChunk + 17
	var even, odd []Reading
	for i := range n {
		r := reading("a", "temperature", i, float64(i%7))
		if i%2 == 0 {
			even = append(even, r)
		} else {
			odd = append(odd, r)
		}
	}
	mustAppend(t, s, even...)
	mustDo(t, s.checkpoint())
	mustAppend(t, s, odd...)
	var times []time.Time
	err := s.Walk(Query{Source: "a", Quantity: "temperature"}, func(r Reading) error {
		times = append(times, r.Time)
		return nil
	})
	mustDo(t, err)
	if len(times) != n {
		t.Fatalf("walked %d readings, want %d", len(times), n)
	}
	for i, tm := range times {
		if want := t0.Add(time.Duration(i) * time.Second); !tm.Equal(want) {
			t.Fatalf("reading %d at %s, want %s", i, tm, want)
		}
	}
	sums, err := s.Summarize(Query{Source: "a", Quantity: "temperature"}, 7*time.Second)
	mustDo(t, err)
	total := 0
	for i, x := range sums {
		total += x.Count
		if i > 0 && x.Count == 7 && (x.Min != 0 || x.Max != 6 || x.Avg != 3) {
			t.Errorf("summary %d = %+v, want min 0, mean 3, max 6", i, x)
		}
	}
	if total != n {
		t.Errorf("summaries count %d readings, want %d", total, n)
	}
}

// walkSeqs returns the seqs of series a/temperature in walk order.
func walkSeqs(t *testing.T, s *Store) []uint64 {
	var seqs []uint64
	mustDo(t, s.Walk(Query{Source: "a", Quantity: "temperature"}, func(r Reading) error {
		seqs = append(seqs, r.Seq)
		return nil
	}))
	return seqs
}

func TestOnCommit(t *testing.T) {
	var mu sync.Mutex
	var seen []Reading
	s := mustOpen(t, Options{OnCommit: func(rs []Reading, took time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if took <= 0 {
			t.Errorf("commit took %v", took)
		}
		seen = append(seen, rs...)
	}})
	mustAppend(t, s, reading("a", "temperature", 0, 1), reading("a", "temperature", 1, 2))
	waitFor(t, func() bool { // OnCommit runs after the waiters are answered
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 2
	})
	mu.Lock()
	defer mu.Unlock()
	if seen[0].Seq != 1 || seen[1].Seq != 2 || seen[1].Value != 2 {
		t.Errorf("OnCommit saw %+v", seen)
	}
}

// BenchmarkSummarize reduces a day of a 1 Hz sensor to 1000 points, the
// web page's chart query: from the file (checkpointed, as a day-old series
// is) and from the head (not yet checkpointed).
func BenchmarkSummarize(b *testing.B) {
	for _, where := range []string{"file", "head"} {
		b.Run(where, func(b *testing.B) {
			s := mustOpen(b, Options{})
			fill(b, s, "a", 86_400)
			if where == "file" {
				mustDo(b, s.checkpoint())
			}
			q := Query{Source: "a", Quantity: "temperature"}
			b.ReportAllocs()
			for b.Loop() {
				sums, err := s.Summarize(q, 86400*time.Millisecond)
				if err != nil || len(sums) != 1000 {
					b.Fatalf("%d summaries, %v", len(sums), err)
				}
			}
		})
	}
}

// TestOnCommitRunsAfterWaitersAreAnswered: the live stream hangs off
// OnCommit; a slow subscriber must not hold back an acknowledgement.
func TestOnCommitRunsAfterWaitersAreAnswered(t *testing.T) {
	gate := make(chan struct{})
	s := mustOpen(t, Options{OnCommit: func([]Reading, time.Duration) { <-gate }})
	t.Cleanup(func() { close(gate) }) // runs before the store's Close
	done := make(chan error, 1)
	go func() { done <- s.Append(context.Background(), reading("a", "temperature", 0, 1)) }()
	select {
	case err := <-done:
		mustDo(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("Append waited for OnCommit")
	}
}
