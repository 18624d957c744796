package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCommitUnderMaintenance measures what a QoS 1 PUBACK waits for —
// Append's latency, the commit's write and fdatasync — at 20 clients in a
// closed loop (each appends its next reading once the last returned),
// beside work that used to hold commits up: "readers" runs an export
// (Walk) and a Count over one series of FIELDGATE_TEST_BENCH_SERIES readings
// (default 10M) without pause, "compaction" compacts the store without
// pause (a compaction that would let the head fill gives way: see
// ErrCompactionYielded); "quiet" is the same clients alone. Each reports
// p50, p99 and the longest in ms, and commits/s. Run with -benchtime 1x:
// the fill takes minutes.
func BenchmarkCommitUnderMaintenance(b *testing.B) {
	n := 10_000_000
	if v := os.Getenv("FIELDGATE_TEST_BENCH_SERIES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	path := filepath.Join(b.TempDir(), "bench.db")
	s, err := Open(Options{Path: path, Config: Config{MaxSize: 8 << 30, CompactRatio: 1e9}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < n; i += 20_000 {
		rs := make([]Reading, 0, 20_000)
		for j := i; j < n && j < i+20_000; j++ {
			rs = append(rs, reading("long", "temperature", j, float64(j%1000)/10))
		}
		if err := s.Append(context.Background(), rs...); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.checkpoint(); err != nil {
		b.Fatal(err)
	}
	long := Query{Source: "long", Quantity: "temperature"}
	loads := []struct {
		name string
		run  func() error
	}{
		{"quiet", nil},
		{"readers", func() error {
			if _, err := s.Count(long); err != nil {
				return err
			}
			return s.Walk(long, func(Reading) error { return nil })
		}},
		{"compaction", func() error {
			if err := s.Compact(); err != nil && !errors.Is(err, ErrCompactionYielded) {
				return err
			}
			return nil
		}},
	}
	for _, load := range loads {
		b.Run(load.name, func(b *testing.B) {
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var rounds atomic.Int64
			if load.run != nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						if err := load.run(); err != nil {
							b.Error(err)
							return
						}
						rounds.Add(1)
					}
				}()
			}
			lats := commitLatencies(b, s, 20, 10*time.Second)
			close(stop)
			wg.Wait()
			b.ReportMetric(float64(lats[len(lats)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(lats[len(lats)-1].Microseconds())/1000, "max-ms")
			b.ReportMetric(float64(len(lats))/10, "commits/s")
			b.ReportMetric(float64(rounds.Load()), "load-rounds")
		})
	}
}

// commitLatencies runs clients appending one reading at a time for d and
// returns every Append's latency, sorted.
func commitLatencies(b *testing.B, s *Store, clients int, d time.Duration) []time.Duration {
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lats []time.Duration
			for i := 0; time.Now().Before(end); i++ {
				start := time.Now()
				if err := s.Append(context.Background(), reading(fmt.Sprintf("node-%d", c), "temperature", i, 1)); err != nil {
					b.Error(err)
					return
				}
				lats = append(lats, time.Since(start))
			}
			mu.Lock()
			all = append(all, lats...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(all)
	if len(all) == 0 {
		b.Fatal("no commit")
	}
	return all
}
