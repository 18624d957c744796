package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fieldgate/store/storetest"
)

// TestAppendThenPipelines: AppendThen returns while a sync hangs, so one
// caller keeps many readings in flight; each done comes only after the sync
// that holds its reading, in the order of the calls, and everything that
// queued during a sync goes into the next one. Each call's flush comes
// once its commit called every done it held.
func TestAppendThenPipelines(t *testing.T) {
	fs, wedge := wedgeableFS(t)
	s := mustOpen(t, Options{LogFS: fs})
	entered, release := wedge(s)
	var once sync.Once
	t.Cleanup(func() { once.Do(release) }) // before Close, should the test fail

	var mu sync.Mutex
	var order []int
	var commitsAt []uint64 // commits completed when each done ran
	const n = 20
	all := make(chan struct{})
	then := func(i int) func(error) {
		return func(err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("reading %d: %v", i, err)
			}
			order = append(order, i)
			commitsAt = append(commitsAt, s.c.commits.Load())
			if len(order) == n+1 {
				close(all)
			}
		}
	}
	var flushedAt []int // dones run when each flush ran
	flush := func() {
		mu.Lock()
		defer mu.Unlock()
		flushedAt = append(flushedAt, len(order))
	}
	before := s.c.commits.Load()
	led := make(chan error, 1)
	go func() {
		led <- s.AppendThen(context.Background(), []Reading{reading("a", "temperature", 0, 0)}, LeadIfIdle, then(0), flush)
	}()
	<-entered // no commit ran: the caller leads, and its sync hangs
	for i := 1; i <= n; i++ {
		if err := s.AppendThen(context.Background(), []Reading{reading("a", "temperature", i, float64(i))}, Lead(i%2 == 0), then(i), flush); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	if len(order) != 0 {
		t.Fatalf("dones %v ran while the sync hung", order)
	}
	mu.Unlock()
	once.Do(release)
	mustDo(t, <-led)
	<-all
	for i, got := range order {
		if got != i {
			t.Fatalf("dones ran in the order %v", order)
		}
	}
	if commitsAt[0] != before+1 {
		t.Errorf("the first done ran after %d commits, want %d", commitsAt[0]-before, 1)
	}
	for i, c := range commitsAt[1:] {
		if c != before+2 {
			t.Errorf("done %d ran after %d commits, want 2: the readings queued during a sync share the next", i+1, c-before)
		}
	}
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(flushedAt) == n+1
	})
	mu.Lock()
	for i, got := range flushedAt {
		want := n + 1 // the second commit held calls 1 to n: all n+1 dones ran before its flushes
		if i == 0 {
			want = 1 // the first held call 0 alone
		}
		if got != want {
			t.Errorf("flush %d ran after %d dones, want %d: after every done of its commit", i, got, want)
		}
	}
	mu.Unlock()
	if rs, err := s.Readings(Query{Source: "a", Quantity: "temperature"}); err != nil || len(rs) != n+1 {
		t.Errorf("%d readings stored (%v), want %d", len(rs), err, n+1)
	}
}

// TestAppendThenReportsAFailedSync: when the sync fails, done hears the
// error; so do the dones of later calls, since a failed sync leaves the log
// refusing writes until a restart (as Append's callers see).
func TestAppendThenReportsAFailedSync(t *testing.T) {
	fs := storetest.NewCrashFS(rand.New(rand.NewPCG(2, 2)))
	s := mustOpen(t, Options{LogFS: fs})
	waitFor(t, func() bool { return s.wal.Stats().Spare })
	var failing atomic.Bool
	failing.Store(true)
	fs.SetFault(func(op, _ string) error {
		if op == "sync" && failing.Load() {
			return errors.New("injected: EIO")
		}
		return nil
	})
	got := make(chan error, 1)
	flushed := make(chan struct{}, 1)
	for i := range 2 {
		if err := s.AppendThen(context.Background(), []Reading{reading("a", "temperature", i, 0)}, Lead(i == 0),
			func(err error) { got <- err }, func() { flushed <- struct{}{} }); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-got:
			if err == nil {
				t.Fatalf("call %d: done heard of no error although the sync failed", i+1)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("call %d: done never ran", i+1)
		}
		select {
		case <-flushed:
		case <-time.After(20 * time.Second):
			t.Fatalf("call %d: flush never ran after the failed commit's done", i+1)
		}
		failing.Store(false)
	}
}

// TestAppendThenWithoutLeadCommitsAtOnce: a caller that does not lead
// returns before its readings are synced, and the flusher commits them at
// once, not after CommitInterval as it does queued readings.
func TestAppendThenWithoutLeadCommitsAtOnce(t *testing.T) {
	fs, wedge := wedgeableFS(t)
	s := mustOpen(t, Options{LogFS: fs, Config: Config{CommitInterval: time.Hour}})
	entered, release := wedge(s)
	var once sync.Once
	t.Cleanup(func() { once.Do(release) })
	got := make(chan error, 1)
	var returned atomic.Bool
	go func() {
		if err := s.AppendThen(context.Background(), []Reading{reading("a", "temperature", 0, 0)}, false, func(err error) { got <- err }, nil); err != nil {
			t.Error(err)
		}
		returned.Store(true)
	}()
	<-entered                 // the flusher's sync hangs
	waitFor(t, returned.Load) // not the caller's: it went on
	select {
	case err := <-got:
		t.Fatalf("done ran (%v) while its sync hung", err)
	default:
	}
	once.Do(release)
	mustDo(t, <-got)
}
