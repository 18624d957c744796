package uplink

import (
	"context"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"fieldgate/store"
	"fieldgate/uplink/wire"
)

// BenchmarkDrain fills a store with a backlog (FIELDGATE_TEST_BENCH_BACKLOG
// readings, default 100,000) and drains it to the reference receiver over
// loopback HTTP with the default batch size (500) and in-flight count (3),
// no backlog rate cap. "live" also appends 1,000 readings/s while the
// backlog drains and reports the live readings' latency to the cloud.
// Run with -benchtime 1x: one op is one whole drain.
func BenchmarkDrain(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("FIELDGATE_TEST_BENCH_BACKLOG")); err == nil && v > 0 {
		n = v
	}
	for _, live := range []bool{false, true} {
		name := "backlog"
		if live {
			name = "backlog+live1000"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				drainOnce(b, n, live)
			}
		})
	}
}

func drainOnce(b *testing.B, n int, live bool) {
	b.StopTimer()
	st := testStore(b, 0)
	fillRealistic(b, st, n)
	sk, srv := cloud(b, "secret")
	o := Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Config: Config{URL: srv.URL, Token: "secret"}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	liveDone := make(chan []uint64, 1)
	b.StartTimer()
	start := time.Now()
	if live {
		go func() { liveDone <- appendLive(ctx, b, st) }()
	}
	runUntilAcked(ctx, b, st, o, uint64(n))
	took := time.Since(start)
	b.StopTimer()
	cancel()
	stats := sk.Stats()
	b.ReportMetric(float64(n)/took.Seconds(), "readings/s")
	b.ReportMetric(float64(stats.BodyBytes)/float64(stats.Readings), "wire-bytes/reading")
	b.ReportMetric(float64(stats.RawBytes)/float64(stats.Readings), "json-bytes/reading")
	if !live {
		return
	}
	seqs := <-liveDone
	recv := sk.Received()
	var lat []time.Duration
	for _, seq := range seqs {
		rs, err := st.ReadingsAfter(seq-1, 1)
		if err != nil || len(rs) == 0 {
			continue
		}
		if at, ok := recv[wire.ReadingID(st.GatewayID(), st.Incarnation(), seq)]; ok {
			lat = append(lat, at.Sub(rs[0].Time))
		}
	}
	if len(lat) == 0 {
		b.Fatal("no live reading reached the cloud during the drain")
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "live-p99-ms")
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "live-p50-ms")
	b.ReportMetric(float64(len(lat)), "live-readings")
}

// runUntilAcked runs a sender with o over st until the cloud acknowledged
// every reading up to seq last.
func runUntilAcked(ctx context.Context, b *testing.B, st *store.Store, o Options, last uint64) {
	s, err := New(st, o)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = s.Run(ctx) }()
	for {
		ob, err := st.Outbox()
		if err != nil {
			b.Fatal(err)
		}
		if ob.Acked >= last {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// appendLive stores 10 readings every 10 ms until ctx ends, timestamped now,
// and returns their seqs.
func appendLive(ctx context.Context, b *testing.B, st *store.Store) []uint64 {
	var seqs []uint64
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return seqs
		case <-t.C:
		}
		rs := make([]store.Reading, 10)
		now := time.Now()
		for i := range rs {
			rs[i] = store.Reading{Source: "live", Quantity: "temperature", Value: 20, Unit: "Cel", Time: now}
		}
		if err := st.Append(ctx, rs...); err != nil {
			if ctx.Err() == nil {
				b.Error(err)
			}
			return seqs
		}
		for _, r := range rs {
			seqs = append(seqs, r.Seq)
		}
	}
}

// fillRealistic stores n readings as a site produces them: 20 nodes and a
// local sensor, temperature and humidity every 10 s with millisecond jitter,
// values that wander with two decimals, so that gzip sees realistic data.
func fillRealistic(b *testing.B, st *store.Store, n int) {
	rng := rand.New(rand.NewPCG(5, 6))
	const chunk = 20000
	temp := make([]float64, 21)
	for i := range temp {
		temp[i] = 18 + 6*rng.Float64()
	}
	t := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	rs := make([]store.Reading, 0, chunk)
	for i := 0; i < n; i++ {
		node := (i / 2) % 21
		if node == 0 && i%2 == 0 {
			t = t.Add(10 * time.Second)
		}
		src := "esp32-" + strconv.Itoa(node)
		if node == 20 {
			src = "i2c1-0x44"
		}
		temp[node] += 0.05 * rng.NormFloat64()
		r := store.Reading{Source: src, Quantity: "temperature", Value: math.Round(temp[node]*100) / 100, Unit: "Cel",
			Time: t.Add(time.Duration(rng.IntN(1000)) * time.Millisecond)}
		if i%2 == 1 {
			r.Quantity, r.Unit, r.Value = "humidity", "%RH", math.Round((55-2*(temp[node]-20)+rng.NormFloat64())*10)/10
		}
		rs = append(rs, r)
		if len(rs) == chunk || i == n-1 {
			if err := st.Append(context.Background(), rs...); err != nil {
				b.Fatal(err)
			}
			rs = rs[:0]
		}
	}
}
