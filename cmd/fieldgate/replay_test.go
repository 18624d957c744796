package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"fieldgate/cmd/fieldgate/daemontest"
	"fieldgate/store"
	"fieldgate/uplink/sink"
	"fieldgate/uplink/wire"
)

// TestCrashDuringReplay SIGKILLs the daemon at random moments while it
// drains a backlog to a receiver that also drops some responses after
// storing the batch. In the end the receiver must hold every reading exactly
// once, and no batch key may ever have come with two different bodies.
func TestCrashDuringReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the daemon 24 times")
	}
	bin := daemontest.Build(t)
	dir := t.TempDir()
	const backlog = 20000
	st, err := store.Open(store.Options{Path: filepath.Join(dir, "fieldgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < backlog; i += 1000 {
		rs := make([]store.Reading, 1000)
		for j := range rs {
			rs[j] = store.Reading{Source: "esp32-a", Quantity: "temperature", Value: float64(i + j), Unit: "Cel", Time: time.Unix(1_750_000_000+int64(i+j), 0)}
		}
		if err := st.Append(context.Background(), rs...); err != nil {
			t.Fatal(err)
		}
	}
	gw, inc := st.GatewayID(), st.Incarnation()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	sk := sink.New("tok")
	// ~25 ms per batch of 40 keeps the drain going across most kill cycles.
	sk.SetFaults(sink.Faults{DropResponse: 0.05, Delay: 25 * time.Millisecond})
	srv := httptest.NewServer(sk)
	defer srv.Close()
	cfg := daemontest.WriteConfig(t, fmt.Sprintf(`data_dir: %s
mqtt:
  listen: ""
api:
  listen: ""
sensors: []
uplink:
  url: %s
  token: tok
  batch_max_readings: 40
  in_flight: 3
  backlog_rate: 0
  flush_interval: 50ms
  backoff_base: 20ms
  backoff_max: 200ms
`, dir, srv.URL))

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	const cycles = 24
	for c := range cycles {
		cmd := exec.Command(bin, "-config", cfg)
		cmd.Env = os.Environ()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(50+rng.IntN(300)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err == nil {
			t.Fatalf("cycle %d: the daemon exited on its own", c)
		}
	}
	delivered := len(sk.Readings())
	// The last run drains what is left, then stops cleanly.
	cmd := exec.Command(bin, "-config", cfg)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(sk.Readings()) < backlog && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("final run: %v", err)
	}

	got := sk.Readings()
	if len(got) != backlog {
		t.Fatalf("receiver holds %d readings, want %d", len(got), backlog)
	}
	for seq := uint64(1); seq <= backlog; seq++ {
		rb, ok := got[wire.ReadingID(gw, inc, seq)]
		if !ok || rb.Value != float64(seq-1) {
			t.Fatalf("reading %d: %+v, %v", seq, rb, ok)
		}
	}
	stats := sk.Stats()
	if stats.Conflicts != 0 {
		t.Errorf("%d batches were resent with different contents", stats.Conflicts)
	}
	t.Logf("%d SIGKILLs; %d of %d readings delivered before the last run; receiver: %+v", cycles, delivered, backlog, stats)
}
