package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"fieldgate/cmd/fieldgate/testenv"
	"fieldgate/store"
)

// TestMain lets compare and ab start this test binary as bare mochi, or
// run a daemon under nosync, as they start fieldgate-bench itself: "mochi"
// or "nosync" as the first argument runs that command instead of the
// tests; "syncprobe" runs syncProbe.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "syncprobe" {
		syncProbe()
		return
	}
	if len(os.Args) > 1 && (os.Args[1] == "mochi" || os.Args[1] == "nosync") {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := run(ctx, append([]string{"fieldgate-bench"}, os.Args[1:]...), os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// buildFieldgate builds the daemon from the repository.
func buildFieldgate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fieldgate")
	build := exec.Command(testenv.Tool(t, "go"), "build", "-o", bin, "./cmd/fieldgate")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// daemon builds fieldgate and starts it as compare does, in dir.
func daemon(t *testing.T, dir string) *peer {
	t.Helper()
	p, err := startFieldgate(context.Background(), buildFieldgate(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	return p
}

func bench(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), append([]string{"fieldgate-bench"}, args...), &out, &errOut); err != nil {
		t.Fatalf("fieldgate-bench %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// TestRunRecordsEveryAcknowledgedReading runs each payload shape against the
// daemon, and nodes that keep 16 publishes in flight (whose PUBACKs must come
// in order), and checks that every reading the tool says was acknowledged is in
// the store with its node and sequence number, and that the process figures
// were read.
func TestRunRecordsEveryAcknowledgedReading(t *testing.T) {
	dir := t.TempDir()
	fg := daemon(t, dir)
	acked := map[string]bool{}
	for i, run := range []struct {
		shape    string
		inflight int
	}{{"plain", 1}, {"senml", 1}, {"esphome", 1}, {"tasmota", 1}, {"plain", 16}} {
		shape := fmt.Sprintf("%s, %d in flight", run.shape, run.inflight)
		file := filepath.Join(t.TempDir(), "acked.txt")
		var rep report
		js := bench(t, "run", "-broker", fg.addr, "-clients", "3", "-duration", "700ms", "-shape", run.shape, "-prefix", "n"+strconv.Itoa(i),
			"-inflight", strconv.Itoa(run.inflight), "-pid", strconv.Itoa(fg.cmd.Process.Pid), "-acked", file, "-json")
		if err := json.Unmarshal([]byte(js), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Readings == 0 || rep.Errors != 0 || rep.LatencyMs.P99 <= 0 || rep.Process == nil || rep.Process.RSSPeakKB == 0 {
			t.Fatalf("%s: report %+v", shape, rep)
		}
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		lines := 0
		for sc := bufio.NewScanner(f); sc.Scan(); lines++ {
			acked[sc.Text()] = true
		}
		f.Close()
		if lines != rep.Readings {
			t.Errorf("%s: %d lines in -acked, %d readings reported", shape, lines, rep.Readings)
		}
	}
	fg.stop()
	st, err := store.Open(store.Options{Path: filepath.Join(dir, "fieldgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rs, err := st.ReadingsAfter(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		delete(acked, r.Source+" "+strconv.FormatFloat(r.Value, 'f', -1, 64))
	}
	if len(acked) != 0 {
		t.Errorf("%d acknowledged readings are not in the store, e.g. %v", len(acked), first(acked))
	}
}

func first(m map[string]bool) string {
	for k := range m {
		return k
	}
	return ""
}

// TestCompareRunsTheBrokers runs compare's whole loop: fieldgate, bare
// mochi (this test binary re-run as the mochi command, see TestMain) and
// mosquitto each serve every client count, bare mochi syncing each publish
// serves the one client, bare mochi syncing in group commits the three,
// and every ratio is made of real figures.
func TestCompareRunsTheBrokers(t *testing.T) {
	testenv.Tool(t, "mosquitto")
	bin := buildFieldgate(t)
	var got struct {
		Runs   []report
		Ratios []ratio
	}
	js := bench(t, "compare", "-clients", "1,3", "-duration", "500ms", "-rounds", "1", "-fieldgate", bin, "-json")
	if err := json.Unmarshal([]byte(js), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Runs) != 8 || len(got.Ratios) != 2 {
		t.Fatalf("%d runs and %d ratios, want 8 and 2:\n%s", len(got.Runs), len(got.Ratios), js)
	}
	for _, r := range got.Ratios {
		for _, name := range []string{targetFieldgate, targetMochi, targetMosquitto, targetSyncMochi, targetGroupMochi} {
			f, ok := r.Targets[name]
			if (name == targetSyncMochi && r.Clients != 1) || (name == targetGroupMochi && r.Clients == 1) {
				if ok {
					t.Errorf("%d clients: %s ran: %+v", r.Clients, name, f)
				}
				continue
			}
			if f.Rate <= 0 || f.CPUus <= 0 || f.RSSMiB <= 0 {
				t.Errorf("%d clients, %s: %+v", r.Clients, name, f)
			}
		}
		if r.MochiRateRatio <= 0 || r.MochiCPURatio <= 0 || r.RateRatio <= 0 || r.CPURatio <= 0 {
			t.Errorf("ratio %+v", r)
		}
		if (r.Clients == 1) != (r.RawSyncRate > 0 && r.RawRatio > 0 && r.RawCeiling > 0 && r.RawCeiling < 1 && r.CeilingRatio > 0) {
			t.Errorf("raw loop figures with %d clients: %+v", r.Clients, r)
		}
		if want := r.Targets[targetFieldgate].Rate / r.Targets[targetSyncMochi].Rate; r.Clients == 1 && r.SyncMochiRatio != want {
			t.Errorf("fieldgate ÷ mochi-sync %v, want %v", r.SyncMochiRatio, want)
		}
		fg, mg := r.Targets[targetFieldgate], r.Targets[targetGroupMochi]
		if r.Clients > 1 && (r.GroupRateRatio != fg.Rate/mg.Rate || r.GroupCPURatio != fg.CPUus/mg.CPUus) {
			t.Errorf("fieldgate ÷ mochi-group %v / %v, want %v / %v", r.GroupRateRatio, r.GroupCPURatio, fg.Rate/mg.Rate, fg.CPUus/mg.CPUus)
		}
	}
}

// TestABRunsBothBuildsAtOnce: ab runs a fieldgate build beside bare mochi
// in every round, under the same fixed load, and each ratio is made of the
// two runs' real figures.
func TestABRunsBothBuildsAtOnce(t *testing.T) {
	bin := buildFieldgate(t)
	var got abSummary
	js := bench(t, "ab", "-a", "mochi", "-b", bin, "-rate", "100", "-clients", "10", "-duration", "2s", "-rounds", "2", "-json")
	if err := json.Unmarshal([]byte(js), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Rounds) != 2 {
		t.Fatalf("%d rounds, want 2:\n%s", len(got.Rounds), js)
	}
	for i, r := range got.Rounds {
		if r.A.Target != targetMochi || r.B.Target != targetFieldgate || r.A.cpuPerReading() <= 0 || r.B.cpuPerReading() <= 0 {
			t.Errorf("round %d: A %+v, B %+v", i+1, r.A, r.B)
		}
		if want := r.B.cpuPerReading() / r.A.cpuPerReading(); r.Ratio != want {
			t.Errorf("round %d: ratio %v, want %v", i+1, r.Ratio, want)
		}
	}
	if got.Min > got.Mean || got.Mean > got.Max || got.Lower > 2 {
		t.Errorf("summary %+v", got)
	}
}

// TestABRunsTheLibraryDurable: ab serves bare mochi syncing each publish
// and syncing in group commits, and both acknowledge the load.
func TestABRunsTheLibraryDurable(t *testing.T) {
	var got abSummary
	js := bench(t, "ab", "-a", "mochi-sync", "-b", "mochi-group", "-rate", "100", "-clients", "10", "-duration", "2s", "-rounds", "1", "-json")
	if err := json.Unmarshal([]byte(js), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Rounds) != 1 {
		t.Fatalf("%d rounds, want 1:\n%s", len(got.Rounds), js)
	}
	r := got.Rounds[0]
	if r.A.Target != targetSyncMochi || r.B.Target != targetGroupMochi || r.A.ReadingsPerSec <= 0 || r.B.ReadingsPerSec <= 0 || r.A.Errors+r.B.Errors > 0 {
		t.Errorf("A %+v, B %+v", r.A, r.B)
	}
}

// TestRawRatioPairsEachRoundWithItsBrackets: fieldgate's one-client rate
// of each round is divided by that round's raw rate, not by the mean, and
// so is the ceiling made of mosquitto's round trip and the raw sync.
func TestRawRatioPairsEachRoundWithItsBrackets(t *testing.T) {
	reps := []report{
		{Target: "fieldgate", Clients: 1, ReadingsPerSec: 100},
		{Target: "mosquitto", Clients: 1, ReadingsPerSec: 600},
		{Target: "fieldgate", Clients: 3, ReadingsPerSec: 700},
		{Target: "mosquitto", Clients: 3, ReadingsPerSec: 1200},
		{Target: "mosquitto", Clients: 1, ReadingsPerSec: 900},
		{Target: "fieldgate", Clients: 1, ReadingsPerSec: 300},
	}
	rate, ratio, ceiling := rawRatio(reps, []float64{200, 300})
	if rate != 250 || ratio != 0.75 { // (100/200 + 300/300) / 2; the means' ratio would be 0.8
		t.Errorf("raw rate %v, ratio %v; want 250 and 0.75", rate, ratio)
	}
	// Round 1: 600/(600+200) = 0.75; round 2: 900/(900+300) = 0.75. Paired
	// the other way round they would give 0.67 and 0.82.
	if ceiling != 0.75 {
		t.Errorf("ceiling %v, want 0.75", ceiling)
	}
}

func TestDrainEmptiesTheStoreOnce(t *testing.T) {
	var rep drainReport
	if err := json.Unmarshal([]byte(bench(t, "drain", "-readings", "3000", "-batch", "200", "-json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Readings != 3000 || rep.Batches != 15 || rep.Duplicates != 0 || rep.ReadingsPerSec <= 0 || rep.WireBytesPerRdg <= 0 {
		t.Errorf("drain report %+v", rep)
	}
}

func TestBadInvocations(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"run", "-shape", "xml", "-duration", "10ms", "-broker", "127.0.0.1:1"},
		{"run", "-qos", "0", "-rate", "0", "-duration", "10ms", "-broker", "127.0.0.1:1"},
		{"compare", "-clients", "ten"},
		{"ab", "-a", "mochi", "-rate", "10"},
		{"ab", "-a", "mochi", "-b", "mochi"},
		{"drain", "-readings", "0"},
	} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), append([]string{"fieldgate-bench"}, args...), &out, &errOut); err == nil {
			t.Errorf("fieldgate-bench %v succeeded", args)
		}
	}
}
