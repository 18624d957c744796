package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"fieldgate/cmd/fieldgate-cloud/receiver/cloudtest"
	"fieldgate/cmd/fieldgate-cloud/receiver/pgtest"
	"fieldgate/uplink/wire"
)

// TestFailoverToASynchronousStandby drains a gateway's backlog through two
// receivers into a primary with a synchronous streaming standby; midway
// the primary is SIGKILLed and the standby promoted. The receivers reach
// the new primary by themselves (libpq's host list with
// target_session_attrs=read-write, their pool reset), and every reading the
// gateway stored is in the new primary once: with a synchronous standby,
// no acknowledged batch is lost in a failover.
func TestFailoverToASynchronousStandby(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two PostgreSQL servers, two receivers and the daemon")
	}
	const gw, backlog = "gw-failover", 20_000
	primary := pgtest.Start(t)
	standby, err := primary.Standby("standby1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = standby.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := standby.Start(ctx); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, primary.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{"ALTER SYSTEM SET synchronous_standby_names = 'standby1'", "SELECT pg_reload_conf()"} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	waitCount(t, func() int {
		var n int
		_ = admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'standby1' AND sync_state = 'sync'").Scan(&n)
		return n
	}, 1)
	_ = admin.Close(ctx)

	url := fmt.Sprintf("host=%s,%s port=5432,5432 user=postgres dbname=postgres sslmode=disable target_session_attrs=read-write",
		primary.SocketDir(), standby.SocketDir())
	rig := cloudtest.StartOn(t, cloudtest.Build(t), gw, 2, primary, url)
	dir := t.TempDir()
	inc := fillBacklog(t, filepath.Join(dir, "fieldgate.db"), gw, backlog, 0)
	cfg := filepath.Join(dir, "config.yaml")
	err = os.WriteFile(cfg, fmt.Appendf(nil, `data_dir: %s
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
  backlog_rate: 0
  flush_interval: 50ms
  backoff_base: 20ms
  backoff_max: 500ms
  timeout: 5s
`, dir, gw, rig.URL(), rig.Token), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cloudtest.GoBuild(t, "fieldgate/cmd/fieldgate"), "-config", cfg)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() }()

	var db *pgx.Conn
	stored := func() int {
		for {
			var n int
			if db != nil {
				if err := db.QueryRow(context.Background(), "SELECT count(*) FROM readings").Scan(&n); err == nil {
					return n
				}
				_ = db.Close(context.Background())
			}
			// The primary died under us, or the standby is not promoted
			// yet: connect again, to whichever takes writes.
			var err error
			if db, err = pgx.Connect(context.Background(), url); err != nil {
				db = nil
				time.Sleep(50 * time.Millisecond) // until a node takes writes
			}
		}
	}
	waitCount(t, stored, backlog/4)
	before := stored()
	killed := time.Now()
	primary.Kill()
	if err := standby.Promote(); err != nil {
		t.Fatal(err)
	}
	promoted := time.Since(killed)
	waitCount(t, stored, before+1)
	recovered := time.Since(killed)
	waitCount(t, stored, backlog)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if st, err := cmd.Process.Wait(); err != nil || !st.Success() {
		t.Errorf("gateway exit after SIGTERM: %v %v", st, err)
	}
	got := rig.Readings()
	if len(got) != backlog {
		t.Fatalf("the new primary holds %d readings, want %d", len(got), backlog)
	}
	for seq := uint64(1); seq <= backlog; seq++ {
		if rb, ok := got[wire.ReadingID(gw, inc, seq)]; !ok || rb.Value != float64(seq) {
			t.Fatalf("reading %d: %+v, %v", seq, rb, ok)
		}
	}
	if s := rig.Stats(); s.Differed != 0 || s.Conflicts != 0 {
		t.Errorf("front: %+v; want no conflicts", s)
	}
	t.Logf("failover: the standby took writes %s after the primary was killed; batches were stored again after %s; %d of %d readings stored before it",
		promoted.Round(time.Millisecond), recovered.Round(time.Millisecond), before, backlog)
}
