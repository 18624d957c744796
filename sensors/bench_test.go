package sensors

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"fieldgate/store"
)

// countSink counts readings and stores nothing.
type countSink struct{ n atomic.Int64 }

func (c *countSink) Enqueue(_ context.Context, rs ...store.Reading) error {
	c.n.Add(int64(len(rs)))
	return nil
}

// BenchmarkPollCycle polls 8 SHT3x sensors on one bus once each (one op =
// one cycle, 16 readings) through the real driver and poller, against an
// emulated bus that answers at once. It reports the CPU time a cycle costs
// (user + system, from getrusage; the driver's measurement waits cost none)
// and the heap allocations per reading.
func BenchmarkPollCycle(b *testing.B) {
	chips := map[uint16]map[string][]byte{}
	var entries []Entry
	sht3x, _ := LookupDriver("sht3x")
	for i := range 8 {
		addr := uint16(0x44 + i%2)
		busNum := i / 2 // two addresses per SHT3x bus: four emulated buses' worth of chips on one
		chips[addr] = map[string][]byte{
			"30 A2": {}, "30 66": {},
			"F3 2D": {0x00, 0x00, 0x81},
			"24 00": {0x66, 0x66, 0x93, 0x80, 0x00, 0xA2},
		}
		bus := &fakeBus{chips: chips}
		entries = append(entries, Entry{
			Name: fmt.Sprintf("s%d", i), Source: fmt.Sprintf("i2c%d-0x%02x", busNum, addr), Driver: "sht3x",
			Bus: "i2c-1", Interval: 10 * time.Second, MinTemp: -40, MaxTemp: 125,
			Open: func() (Sensor, error) { return sht3x.Open(bus, addr) },
		})
	}
	sink := &countSink{}
	p := NewPoller(entries, sink, PollerOpts{})
	group := p.groups[0]
	ctx := context.Background()
	for _, ps := range group { // open every chip before measuring
		p.poll(ctx, ps)
	}
	sink.n.Store(0)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for range b.N {
		for _, ps := range group {
			p.poll(ctx, ps)
		}
	}
	b.StopTimer()
	cpu := cpuTime(b) - cpu0
	runtime.ReadMemStats(&ms1)
	readings := sink.n.Load()
	if readings != int64(16*b.N) {
		b.Fatalf("%d readings from %d cycles, want 16 per cycle", readings, b.N)
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/cycle")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(readings), "allocs/reading")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
