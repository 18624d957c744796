package uplink

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"fieldgate/store"
	"fieldgate/uplink/sink"
	"fieldgate/uplink/wire"
)

var t0 = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

// testStore opens a store with n readings from three sources.
func testStore(tb testing.TB, n int) *store.Store {
	tb.Helper()
	st, err := store.Open(store.Options{Path: filepath.Join(tb.TempDir(), "fieldgate.db"), GatewayID: "fg-test"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := st.Close(); err != nil {
			tb.Error(err)
		}
	})
	appendN(tb, st, n, 0)
	return st
}

// appendN stores n readings whose values start at base.
func appendN(tb testing.TB, st *store.Store, n, base int) {
	tb.Helper()
	const chunk = 5000
	for i := 0; i < n; i += chunk {
		rs := make([]store.Reading, 0, chunk)
		for j := i; j < n && j < i+chunk; j++ {
			rs = append(rs, store.Reading{
				Source: []string{"i2c1-0x44", "esp32-a", "esp32-b"}[j%3], Quantity: "temperature",
				Value: float64(base + j), Unit: "Cel", Time: t0.Add(time.Duration(base+j) * time.Second),
			})
		}
		if err := st.Append(context.Background(), rs...); err != nil {
			tb.Fatal(err)
		}
	}
}

// cloud is a sink behind a real HTTP server.
func cloud(tb testing.TB, token string) (*sink.Sink, *httptest.Server) {
	tb.Helper()
	sk := sink.New(token)
	srv := httptest.NewServer(sk)
	tb.Cleanup(srv.Close)
	return sk, srv
}

// fastOptions keep tests quick: small batches and backoff.
func fastOptions(url string) Options {
	return Options{

		AuthRetry: 50 * time.Millisecond,
		Rand:      rand.New(rand.NewPCG(1, 2)),
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)), Config: Config{

			// running starts a sender and stops it at the end of the test.
			URL: url, Token: "secret", BatchMaxReadings: 100, InFlight: 3, FlushInterval: 20 * time.Millisecond, BackoffBase: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Timeout: 5 * time.Second},
	}
}

func running(tb testing.TB, st Store, o Options) *Sender {
	tb.Helper()
	s, err := New(st, o)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.Run(ctx); err != nil {
			tb.Error(err)
		}
	}()
	tb.Cleanup(func() { cancel(); wg.Wait() })
	return s
}

// drained waits until the cloud acknowledged every stored reading.
func drained(tb testing.TB, st *store.Store, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ob, err := st.Outbox()
		if err != nil {
			tb.Fatal(err)
		}
		if ob.Acked == ob.LastSeq {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("not drained after %v: acked %d of %d, outbox %+v", timeout, ob.Acked, ob.LastSeq, ob.Batches)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// exactlyOnce checks the cloud holds every stored reading once, unchanged.
func exactlyOnce(tb testing.TB, st *store.Store, sk *sink.Sink) {
	tb.Helper()
	all, err := st.ReadingsAfter(0, 0)
	if err != nil {
		tb.Fatal(err)
	}
	got := sk.Readings()
	if len(got) != len(all) {
		tb.Errorf("cloud holds %d readings, the store %d", len(got), len(all))
	}
	for _, r := range all {
		rb, ok := got[wire.ReadingID(st.GatewayID(), st.Incarnation(), r.Seq)]
		if !ok {
			tb.Errorf("reading %d never reached the cloud", r.Seq)
			continue
		}
		if rb.Value != r.Value || rb.Source != r.Source || rb.Time != r.Time.Format(time.RFC3339Nano) {
			tb.Errorf("reading %d arrived as %+v, stored as %v", r.Seq, rb, r)
		}
	}
	if c := sk.Stats().Conflicts; c != 0 {
		tb.Errorf("%d conflicts: a batch was resent with a different body", c)
	}
}

func writeFile(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
}
