package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkCheckpoint moves the head into bbolt, 20,000 readings of 50
// series at a time, interleaved as a site's nodes deliver them: the share
// of each reading's CPU that the ingest path spends after its log append.
// It reports ns per reading moved.
func BenchmarkCheckpoint(b *testing.B) {
	const chunk, series = 20000, 50
	s := mustOpen(b, Options{Config: Config{Head: HeadConfig{MaxReadings: 10 * chunk, MaxBytes: 1 << 30, MaxAge: time.Hour}}})
	rs := make([]Reading, chunk)
	t0 := time.Unix(1_750_000_000, 0)
	n := 0
	for b.Loop() {
		b.StopTimer()
		for i := range rs {
			rs[i] = Reading{Source: fmt.Sprintf("node-%02d", n%series), Quantity: "temperature", Value: float64(n % 400),
				Unit: "Cel", Time: t0.Add(time.Duration(n/series) * time.Second)}
			n++
		}
		if err := s.Append(context.Background(), rs...); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := s.checkpoint(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/reading")
}
