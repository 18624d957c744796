package store

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkHeadInsert measures what adding a reading to the head costs
// in its steady state: groups of 50 readings (a commit at 50 clients) from
// 50 series go in while checkpoints take the oldest out in chunks, so that
// the head holds between 80,000 and 100,000 readings (the default bound).
// Run with -bench HeadInsert -benchmem.
func BenchmarkHeadInsert(b *testing.B) {
	const group, low, high, chunk = 50, 80000, 100000, 20000
	h := newHead()
	now := time.Unix(1_700_000_000, 0)
	never := func(*Reading) bool { return false }
	rs := make([]Reading, group)
	for i := range rs {
		rs[i] = Reading{Source: fmt.Sprintf("node-%02d", i), Quantity: "temperature", Unit: "Cel", Clock: ClockSynced}
	}
	seq, first := uint64(0), uint64(1)
	fill := func() {
		for i := range rs {
			seq++
			rs[i].Seq, rs[i].Value, rs[i].Time = seq, float64(seq), now.Add(time.Duration(seq)*time.Millisecond)
		}
		h.insert(rs, now, never)
		if seq-first+1 >= high {
			for seq-first+1 > low {
				first += chunk
				h.dropThrough(first-1, now)
			}
		}
	}
	for seq < high {
		fill()
	}
	b.ResetTimer()
	for b.Loop() {
		fill()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*group), "ns/reading")
}
