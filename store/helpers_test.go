package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"fieldgate/store/storetest"
)

// mustOpen opens a store in a fresh temp dir, closed at the end of the
// test. Its head and intervals may be as small as the test likes.
func mustOpen(tb testing.TB, opts Options) *Store {
	tb.Helper()
	opts.anyTiming = true
	if opts.Path == "" {
		opts.Path = filepath.Join(tb.TempDir(), "fieldgate.db")
	}
	s, err := Open(opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// reopen closes s and opens its file again with opts (Path filled in).
func reopen(tb testing.TB, s *Store, opts Options) *Store {
	tb.Helper()
	if err := s.Close(); err != nil {
		tb.Fatalf("Close: %v", err)
	}
	opts.Path = s.Path()
	return mustOpen(tb, opts)
}

var t0 = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

// reading builds a valid reading of source/quantity at t0 + i seconds.
func reading(source, quantity string, i int, v float64) Reading {
	return Reading{Source: source, Quantity: quantity, Value: v, Unit: "Cel", Time: t0.Add(time.Duration(i) * time.Second)}
}

// mustAppend appends rs durably and fails the test on error.
func mustAppend(tb testing.TB, s *Store, rs ...Reading) {
	tb.Helper()
	if err := s.Append(context.Background(), rs...); err != nil {
		tb.Fatalf("Append: %v", err)
	}
}

// fill appends n readings of one series in batches, oldest first.
func fill(tb testing.TB, s *Store, source string, n int) {
	tb.Helper()
	const batch = 5000
	for i := 0; i < n; i += batch {
		rs := make([]Reading, 0, batch)
		for j := i; j < n && j < i+batch; j++ {
			rs = append(rs, reading(source, "temperature", j, float64(j)))
		}
		mustAppend(tb, s, rs...)
	}
}

// mustCheck runs bbolt's consistency check.
func mustCheck(tb testing.TB, s *Store) {
	tb.Helper()
	if err := s.Check(); err != nil {
		tb.Fatal(err)
	}
}

func (r Reading) String() string {
	return fmt.Sprintf("#%d %s/%s=%g%s@%s(%s)", r.Seq, r.Source, r.Quantity, r.Value, r.Unit, r.Time.Format(time.RFC3339Nano), r.Clock)
}

// mustCheckpoint moves the head into bbolt.
func mustCheckpoint(tb testing.TB, s *Store) {
	tb.Helper()
	if err := s.checkpoint(); err != nil {
		tb.Fatalf("checkpoint: %v", err)
	}
}

// wedgeableFS returns an in-memory log file system and wedge, which makes
// syncs of log files hang — a dying SD card — until release is called;
// entered receives when a sync hangs. wedge first waits until the store's
// log has its spare segment ready, so that the sync that hangs is one a
// commit waits for, not the spare's.
func wedgeableFS(tb testing.TB) (*storetest.CrashFS, func(s *Store) (entered <-chan struct{}, release func())) {
	fs := storetest.NewCrashFS(rand.New(rand.NewPCG(1, 1)))
	var mu sync.Mutex
	var gate chan struct{}
	entered := make(chan struct{}, 1)
	fs.SetFault(func(op, _ string) error {
		mu.Lock()
		g := gate
		mu.Unlock()
		if op == "sync" && g != nil {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-g
		}
		return nil
	})
	return fs, func(s *Store) (<-chan struct{}, func()) {
		waitFor(tb, func() bool { return s.wal.Stats().Spare })
		g := make(chan struct{})
		mu.Lock()
		gate = g
		mu.Unlock()
		return entered, func() {
			mu.Lock()
			gate = nil
			mu.Unlock()
			close(g)
		}
	}
}

// waitFor polls cond until it holds; it fails the test after a generous
// deadline, which only a broken store reaches.
func waitFor(tb testing.TB, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// noSyncBolt opens bbolt without fsyncs, for tests whose power cuts hit
// only the log (bbolt's file keeps what the kernel has): thousands of
// cycles then take seconds.
func noSyncBolt(path string, o Options) (*bolt.DB, error) {
	db, err := openBolt(path, o)
	if err == nil {
		db.NoSync = true
	}
	return db, err
}
