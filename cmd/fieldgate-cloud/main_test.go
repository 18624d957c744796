package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"fieldgate/cmd/fieldgate-cloud/receiver"
	"fieldgate/cmd/fieldgate-cloud/receiver/cloudtest"
	"fieldgate/cmd/fieldgate-cloud/receiver/pgtest"
	"fieldgate/uplink/wire"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// cli runs the command with DATABASE_URL set to url.
func cli(t *testing.T, url string, args ...string) (string, error) {
	t.Helper()
	t.Setenv("DATABASE_URL", url)
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String() + errOut.String(), err
}

var tokenLine = regexp.MustCompile(`(?m)^(fgc_\S+)$`)

func TestGatewayCommands(t *testing.T) {
	url := pgtest.NewDB(t)
	// The admin commands never migrate: a database not migrated yet is
	// refused with the way out.
	if out, err := cli(t, url, "gateway", "add", "site-7"); err == nil || !strings.Contains(out+err.Error(), "run fieldgate-cloud migrate") {
		t.Fatalf("gateway add before migrate: %v\n%s", err, out)
	}
	if out, err := cli(t, url, "migrate"); err != nil || !strings.Contains(out, "migrated from version 0") {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	out, err := cli(t, url, "gateway", "add", "site-7", "-name", "Pump house")
	tok := tokenLine.FindString(out)
	if err != nil || tok == "" {
		t.Fatalf("gateway add: %v\n%s", err, out)
	}
	if out, err := cli(t, url, "gateway", "add", "site-7"); err == nil || !strings.Contains(out+err.Error(), "exists") {
		t.Errorf("adding site-7 again: %v\n%s", err, out)
	}
	out, err = cli(t, url, "gateway", "list")
	if err != nil || !regexp.MustCompile(`site-7\s+Pump house\s+\S+\s+never`).MatchString(out) {
		t.Errorf("gateway list: %v\n%s", err, out)
	}
	out, err = cli(t, url, "gateway", "rotate", "site-7")
	if rotated := tokenLine.FindString(out); err != nil || rotated == "" || rotated == tok {
		t.Errorf("gateway rotate: %v\n%s", err, out)
	}
	if _, err := cli(t, url, "gateway", "remove", "site-7"); err != nil {
		t.Error(err)
	}
	if _, err := cli(t, url, "gateway", "remove", "site-7"); err == nil {
		t.Error("removing a removed gateway succeeded")
	}
	if out, err := cli(t, url, "migrate"); err != nil || !strings.Contains(out, "nothing to do") {
		t.Errorf("migrate on a current schema: %v\n%s", err, out)
	}
	if _, err := cli(t, "", "gateway", "list"); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("no database: %v, want a hint at DATABASE_URL", err)
	}
	if _, err := cli(t, url, "gateway", "add"); err == nil {
		t.Error("gateway add without an id succeeded")
	}
	if _, err := cli(t, url, "frobnicate"); err == nil {
		t.Error("an unknown command succeeded")
	}
}

// TestServeFinishesRequestsInFlight sends SIGTERM to a running receiver
// while a batch's body is still arriving: the batch is stored and
// answered, then the process exits 0.
func TestServeFinishesRequestsInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the receiver")
	}
	rig := cloudtest.Start(t, cloudtest.Build(t), "gw-a", 1)
	body := gzipBatch(t, "gw-a", 1, 3)
	pr, pw := io.Pipe()
	replica := rig.ReplicaURL(0)
	req, err := http.NewRequest(http.MethodPut, replica+"/v1/gateways/gw-a/batches/1-3", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+rig.Token)
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Idempotency-Key", "gw-a:1-3")
	answered := make(chan *http.Response, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
		}
		answered <- res
	}()
	if _, err := pw.Write(body[:10]); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(get(t, replica+"/metrics"), "fieldgate_cloud_requests_in_flight 1") {
		time.Sleep(5 * time.Millisecond) // until the handler reads the body
	}
	exited := rig.Signal(0, syscall.SIGTERM)
	select {
	case err := <-exited:
		_ = pw.CloseWithError(io.ErrUnexpectedEOF)
		res := <-answered
		t.Fatalf("the receiver exited (%v) with a request in flight; the answer: %+v", err, res)
	case <-time.After(200 * time.Millisecond): // long enough for an exit to show
	}
	_, _ = pw.Write(body[10:])
	_ = pw.Close()
	if res := <-answered; res == nil || res.StatusCode != http.StatusOK {
		t.Fatalf("answer after SIGTERM: %+v", res)
	}
	if err := <-exited; err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	if n := len(rig.Readings()); n != 3 {
		t.Errorf("%d readings stored, want 3", n)
	}
}

// TestServeRefusesAnOldSchemaWithoutMigrate starts the receiver with
// -migrate=false on an empty database: it must say what to run.
func TestServeRefusesAnOldSchemaWithoutMigrate(t *testing.T) {
	url := pgtest.NewDB(t)
	out, err := cli(t, url, "serve", "-migrate=false", "-listen", "127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "fieldgate-cloud migrate") {
		t.Errorf("serve on an unmigrated database: %v\n%s", err, out)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func gzipBatch(t testing.TB, gw string, first, last uint64) []byte {
	t.Helper()
	b := wire.BatchBody{Gateway: gw, FirstSeq: first, LastSeq: last}
	for seq := first; seq <= last; seq++ {
		b.Readings = append(b.Readings, wire.ReadingBody{Seq: seq, Source: "esp32-a", Quantity: "temperature", Value: 21.5,
			Unit: "Cel", Time: "2026-11-22T10:00:00Z", Clock: "synced"})
	}
	return gzipJSON(t, b)
}

// gzipJSON is b's body as the gateway sends it: JSON, gzip'd.
func gzipJSON(t testing.TB, b wire.BatchBody) []byte {
	t.Helper()
	_, body, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// TestReadingsCommands lists the monthly partitions of readings and
// prunes the months past what is kept, through the command line.
func TestReadingsCommands(t *testing.T) {
	url := pgtest.NewDB(t)
	if out, err := cli(t, url, "migrate"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	db, err := receiver.Open(t.Context(), url, receiver.DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	this := receiver.MonthsBack(time.Now(), 0)
	if _, err := db.EnsurePartitions(t.Context(), this.AddDate(0, -3, 0)); err != nil { // as a receiver running then did
		t.Fatal(err)
	}
	out, err := cli(t, url, "readings", "list")
	if err != nil || !strings.Contains(out, "readings_default") ||
		!regexp.MustCompile(fmt.Sprintf(`readings_%s\s+%s\s+%s\s+\d+ KiB`, this.Format("2006_01"), this.Format("2006-01-02"), this.AddDate(0, 1, 0).Format("2006-01-02"))).MatchString(out) {
		t.Fatalf("readings list: %v\n%s", err, out)
	}
	if _, err := cli(t, url, "readings", "prune"); err == nil || !strings.Contains(err.Error(), "-keep-months") {
		t.Errorf("prune without -keep-months: %v", err)
	}
	out, err = cli(t, url, "readings", "prune", "-keep-months", "1")
	if err != nil || strings.Count(out, "dropped ") != 2 || !strings.Contains(out, "dropped readings_"+this.AddDate(0, -3, 0).Format("2006_01")) {
		t.Fatalf("prune -keep-months 1: %v\n%s", err, out)
	}
	if out, err := cli(t, url, "readings", "prune", "-keep-months", "1"); err != nil || !strings.Contains(out, "nothing received before") {
		t.Errorf("prune again: %v\n%s", err, out)
	}
}
