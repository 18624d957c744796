package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"fieldgate/cmd/fieldgate-cloud/receiver/cloudtest"
	"fieldgate/cmd/fieldgate/daemontest"
	"fieldgate/store"
	"fieldgate/uplink/wire"
)

// TestWrongURLThenAStoreThatStartsOver runs a gateway through two things a
// fleet goes through: an uplink.url with a wrong path prefix (the receiver
// answers 404), and a store deleted and made anew under the same gateway
// id (a replaced SD card), whose seqs start at 1 again. The wrong URL
// pauses the uplink and dead-letters nothing; once fixed, every reading of
// both stores is in PostgreSQL once, with its own value.
func TestWrongURLThenAStoreThatStartsOver(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PostgreSQL, a receiver and the daemon")
	}
	const gw, first, second = "gw-fleet", 3000, 2000
	rig := cloudtest.Start(t, cloudtest.Build(t), gw, 1)
	daemon := cloudtest.GoBuild(t, "fieldgate/cmd/fieldgate")
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "fieldgate.db")
	incA := fillBacklog(t, dbPath, gw, first, 0)
	config := func(url string) string {
		return daemontest.WriteConfig(t, fmt.Sprintf(`data_dir: %s
gateway:
  id: %s
mqtt:
  listen: ""
api:
  listen: 127.0.0.1:0
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
  backoff_max: 200ms
  timeout: 5s
`, dir, gw, url, rig.Token))
	}
	status := func(d *daemontest.Daemon) map[string]any {
		_, body := (&daemontest.API{TB: t, Base: d.API}).Do("GET", "/api/v1/status", nil)
		up, _ := body["uplink"].(map[string]any)
		return up
	}

	// A wrong path prefix: the receiver answers 404 to every batch.
	d := daemontest.Start(t, daemon, config(rig.URL()+"/ingest"))
	daemontest.WaitUntil(t, time.Minute, func() bool { return status(d)["state"] == "misconfigured" })
	up := status(d)
	if n := rig.Stats().Stored; n != 0 {
		t.Errorf("%d batches stored through a wrong URL", n)
	}
	d.Terminate(t)
	if dls := deadLetters(t, dbPath); dls != 0 {
		t.Fatalf("%d dead letters after a wrong URL (status %v); want none", dls, up)
	}

	// Fixed: the backlog drains.
	d = daemontest.Start(t, daemon, config(rig.URL()))
	waitCount(t, func() int { return len(rig.Readings()) }, first)
	d.Terminate(t)

	// The card is replaced: a new store under the same id, seqs from 1.
	if err := os.RemoveAll(dbPath); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dbPath + ".wal"); err != nil {
		t.Fatal(err)
	}
	incB := fillBacklog(t, dbPath, gw, second, 100_000)
	if incB == incA || incB == "" {
		t.Fatalf("incarnations %q and %q: a new store needs a new one", incA, incB)
	}
	d = daemontest.Start(t, daemon, config(rig.URL()))
	waitCount(t, func() int { return len(rig.Readings()) }, first+second)
	d.Terminate(t)

	got := rig.Readings()
	if len(got) != first+second {
		t.Fatalf("database holds %d readings, want %d", len(got), first+second)
	}
	for _, c := range []struct {
		inc  string
		n    int
		base float64
	}{{incA, first, 0}, {incB, second, 100_000}} {
		for seq := uint64(1); seq <= uint64(c.n); seq++ {
			if rb, ok := got[wire.ReadingID(gw, c.inc, seq)]; !ok || rb.Value != c.base+float64(seq) {
				t.Fatalf("incarnation %s, reading %d: %+v, %v", c.inc, seq, rb, ok)
			}
		}
	}
	if s := rig.Stats(); s.Conflicts != 0 || s.Differed != 0 {
		t.Errorf("front: %+v; want no conflicts", s)
	}
	if dls := deadLetters(t, dbPath); dls != 0 {
		t.Errorf("%d dead letters", dls)
	}
	// The fleet view: the gateway reported its status when the cloud
	// first answered, with the new store's incarnation.
	out, err := rig.CLI("gateway", "list")
	if err != nil || !regexp.MustCompile(`(?m)^`+gw+`\s.*\s(ok|degraded)\s+synced\s`).MatchString(out) {
		t.Errorf("gateway list: %v\n%s", err, out)
	}
}

// deadLetters counts the dead letters in the store at path.
func deadLetters(t *testing.T, path string) int {
	t.Helper()
	st, err := store.Open(store.Options{Path: path, KeepBoot: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ob, err := st.Outbox()
	if err != nil {
		t.Fatal(err)
	}
	return len(ob.DeadLetters)
}
