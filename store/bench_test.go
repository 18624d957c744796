package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// appender is one way of storing a single reading durably.
type appender func(r Reading) error

// BenchmarkAppend compares our group committer with the two obvious bbolt
// alternatives, one durable reading per call, at 1, 10 and 100 concurrent
// callers (MQTT connections each with one QoS 1 publish in flight):
//
//	committer  Store.Append
//	update     one DB.Update per reading
//	batch      DB.Batch per reading (bbolt's own coalescing, 10 ms delay)
//
// It reports readings/s and the per-call latency p50 and p99.
func BenchmarkAppend(b *testing.B) {
	for _, callers := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("committer/callers=%d", callers), func(b *testing.B) {
			s := mustOpen(b, Options{})
			runAppenders(b, callers, func(r Reading) error { return s.Append(context.Background(), r) })
		})
		b.Run(fmt.Sprintf("update/callers=%d", callers), func(b *testing.B) {
			db, seq := rawDB(b)
			runAppenders(b, callers, func(r Reading) error { return db.Update(rawPut(seq, r)) })
		})
		b.Run(fmt.Sprintf("batch/callers=%d", callers), func(b *testing.B) {
			db, seq := rawDB(b)
			runAppenders(b, callers, func(r Reading) error { return db.Batch(rawPut(seq, r)) })
		})
	}
}

// rawDB opens a bare bbolt file with the store's buckets, for the baselines.
func rawDB(b *testing.B) (*bolt.DB, *atomic.Uint64) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, Options{Config: Config{MaxSize: DefaultConfig().MaxSize}}.boltOptions())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := db.Close(); err != nil {
			b.Error(err)
		}
	})
	mustDo(b, db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bReadings, bIndex} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return nil
	}))
	return db, new(atomic.Uint64)
}

// rawPut writes a reading and its index entry the way the store does.
func rawPut(seq *atomic.Uint64, r Reading) func(*bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		n := seq.Add(1)
		if err := tx.Bucket(bReadings).Put(seqKey(n), encodeReading(nil, 1, &r)); err != nil {
			return err
		}
		return tx.Bucket(bIndex).Put(indexKey(1, r.Time, n), indexValue(&r))
	}
}

// runAppenders spreads b.N appends over callers goroutines and reports
// throughput and latency percentiles.
func runAppenders(b *testing.B, callers int, add appender) {
	lat := make([][]time.Duration, callers)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := "node-" + strconv.Itoa(c)
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				t := time.Now()
				if err := add(Reading{Source: src, Quantity: "temperature", Value: float64(i), Unit: "Cel", Time: t}); err != nil {
					b.Error(err)
					return
				}
				lat[c] = append(lat[c], time.Since(t))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "readings/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkQueryLastHour reads the last hour of one sensor (3600 readings)
// from stores of 100k and 10M readings spread over 10 sensors at 1 Hz each.
// The index makes the cost follow the result, so the two should be close.
// The 10M store takes a few minutes to build; it runs only with
// FIELDGATE_TEST_BENCH_LARGE=10000000 (any count of readings above 100k).
func BenchmarkQueryLastHour(b *testing.B) {
	sizes := []int{100_000}
	if n, err := strconv.Atoi(os.Getenv("FIELDGATE_TEST_BENCH_LARGE")); err == nil && n > sizes[0] {
		sizes = append(sizes, n)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("readings=%d", n), func(b *testing.B) {
			s := mustOpen(b, Options{MaxBatch: 50000, Config: Config{MaxSize: 4 << 30}})
			const sensors = 10
			end := fillSensors(b, s, n, sensors)
			q := Query{Source: "sensor-3", Quantity: "temperature", From: end.Add(-time.Hour + time.Second), To: end.Add(time.Second)}
			b.ResetTimer()
			for range b.N {
				rs, err := s.Readings(q)
				if err != nil {
					b.Fatal(err)
				}
				if len(rs) != 3600 {
					b.Fatalf("%d readings in the last hour, want 3600", len(rs))
				}
			}
		})
	}
}

// fillSensors appends n readings round-robin over sensors, one per sensor
// per second, and returns the time of the last one.
func fillSensors(b *testing.B, s *Store, n, sensors int) time.Time {
	const batch = 50000
	start := t0
	var last time.Time
	rs := make([]Reading, 0, batch)
	for i := range n {
		last = start.Add(time.Duration(i/sensors) * time.Second)
		rs = append(rs, Reading{Source: "sensor-" + strconv.Itoa(i%sensors), Quantity: "temperature", Value: float64(i), Unit: "Cel", Time: last})
		if len(rs) == batch || i == n-1 {
			mustAppend(b, s, rs...)
			rs = rs[:0]
		}
	}
	return last
}
