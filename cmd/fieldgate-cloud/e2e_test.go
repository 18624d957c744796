package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"fieldgate/cmd/fieldgate-cloud/receiver/cloudtest"
	"fieldgate/store"
	"fieldgate/uplink/sink"
	"fieldgate/uplink/wire"
)

// TestExactlyOnceThroughTwoReplicas drains a gateway's backlog through two
// receiver replicas (requests alternating) into one PostgreSQL while the
// front drops a fifth of the answers after the commit, and in turn: a
// replica is SIGKILLed, PostgreSQL restarts, the gateway is SIGKILLed. In
// the end the database holds every reading the gateway stored, once, with
// its value, every replay was answered as the first time and no batch
// conflicted.
func TestExactlyOnceThroughTwoReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PostgreSQL, two receivers and the daemon")
	}
	const gw, backlog = "gw-e2e", 20_000
	rig := cloudtest.Start(t, cloudtest.Build(t), gw, 2)
	daemon := cloudtest.GoBuild(t, "fieldgate/cmd/fieldgate")
	dir := t.TempDir()
	inc := fillBacklog(t, filepath.Join(dir, "fieldgate.db"), gw, backlog, 0)
	cfg := filepath.Join(dir, "config.yaml")
	err := os.WriteFile(cfg, fmt.Appendf(nil, `data_dir: %s
gateway:
  id: %s
mqtt:
  listen: ""
api:
  listen: ""
sensors: []
clock:
  trust: system
uplink:
  url: %s
  token: %s
  batch_max_readings: 100
  in_flight: 3
  backlog_rate: 0
  flush_interval: 50ms
  backoff_base: 20ms
  backoff_max: 500ms
  timeout: 5s
`, dir, gw, rig.URL(), rig.Token), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	rig.SetFaults(sink.Faults{DropResponse: 0.2})
	logFile, err := os.Create(filepath.Join(dir, "fieldgate.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name()) // best effort
			t.Logf("the gateway's log:\n%s", b)
		}
	}()
	start := func() *exec.Cmd {
		cmd := exec.Command(daemon, "-config", cfg)
		cmd.Stderr = logFile
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	cmd := start()
	defer func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() }()

	db, err := pgx.Connect(t.Context(), rig.DBURL)
	if err != nil {
		t.Fatal(err)
	}
	stored := func() int {
		var n int
		for {
			if err := db.QueryRow(t.Context(), "SELECT count(*) FROM readings").Scan(&n); err == nil {
				return n
			}
			// The database restarted under us: connect again.
			if db, err = pgx.Connect(t.Context(), rig.DBURL); err != nil {
				time.Sleep(50 * time.Millisecond) // until it is back
			}
		}
	}
	// Each fault waits for a further tenth of the backlog to be stored, so
	// every fault lands mid-drain.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	faults := []string{"replica sigkill", "database restart", "gateway sigkill"}
	injected := 0
	for next := backlog / 10; next < backlog*8/10; next += backlog / 10 {
		waitCount(t, stored, next)
		switch f := faults[injected%len(faults)]; f {
		case "replica sigkill":
			rig.KillReplica(rng.IntN(2))
		case "database restart":
			rig.RestartDatabase(time.Duration(rng.IntN(500)) * time.Millisecond)
		case "gateway sigkill":
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_, _ = cmd.Process.Wait()
			cmd = start()
		}
		injected++
	}
	waitCount(t, stored, backlog)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if st, err := cmd.Process.Wait(); err != nil || !st.Success() {
		t.Errorf("gateway exit after SIGTERM: %v %v", st, err)
	}

	got := rig.Readings()
	if len(got) != backlog {
		t.Fatalf("database holds %d readings, want %d", len(got), backlog)
	}
	values := map[float64]bool{}
	for seq := uint64(1); seq <= backlog; seq++ {
		rb, ok := got[wire.ReadingID(gw, inc, seq)]
		if !ok || rb.Value != float64(seq) || rb.Source != "esp32-a" {
			t.Fatalf("reading %d: %+v, %v", seq, rb, ok)
		}
		values[rb.Value] = true
	}
	if len(values) != backlog {
		t.Errorf("%d distinct values among %d readings", len(values), backlog)
	}
	s := rig.Stats()
	if s.Differed != 0 || s.Conflicts != 0 {
		t.Errorf("%d replays answered differently, %d conflicts; want none", s.Differed, s.Conflicts)
	}
	if s.Replays == 0 {
		t.Error("no batch was replayed: the dropped answers did not bite")
	}
	t.Logf("%d faults (%v in turn); front: %+v", injected, faults, s)
}

// fillBacklog stores n readings (values base+1…base+n) for gateway gw at
// path and returns the store's incarnation.
func fillBacklog(t *testing.T, path, gw string, n int, base float64) (incarnation string) {
	t.Helper()
	st, err := store.Open(store.Options{Path: path, GatewayID: gw})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Duration(n) * time.Second)
	for i := 0; i < n; i += 1000 {
		rs := make([]store.Reading, 0, 1000)
		for j := i; j < min(n, i+1000); j++ {
			rs = append(rs, store.Reading{Source: "esp32-a", Quantity: "temperature", Value: base + float64(j+1), Unit: "Cel",
				Time: t0.Add(time.Duration(j) * time.Second)})
		}
		if err := st.Append(context.Background(), rs...); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return st.Incarnation()
}

// waitCount waits until count() reaches want.
func waitCount(t *testing.T, count func() int, want int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for n := count(); n < want; n = count() {
		if time.Now().After(deadline) {
			t.Fatalf("%d readings stored after 2 minutes, want %s", n, strconv.Itoa(want))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
