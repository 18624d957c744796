package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// pipelined is how many QoS 1 publishes each node keeps in flight in the
// backlog-replay comparison: the broker's default receive maximum.
const pipelined = 32

// reportSteps lists what the page measures, in the order it runs: the
// comparisons with a peer first, the long chaos run last.
func reportSteps(sz sizes) []step {
	clients := []string{"clients=1", "clients=10", "clients=50"}
	loadUnits := []string{"readings/s", "p50-ms", "p99-ms", "max-ms", "cpu-%", "rss-MiB", "anon-MiB", "errors"}
	all := func(units []string) map[string][]string {
		w := map[string][]string{}
		for _, c := range clients {
			for _, t := range []string{targetFieldgate, targetMochi, targetMosquitto} {
				w[t+"/"+c] = units
			}
		}
		return w
	}
	appendWant := map[string][]string{}
	for _, way := range []string{"committer", "update", "batch"} {
		for _, n := range []string{"1", "10", "100"} {
			appendWant[way+"/callers="+n] = []string{"readings/s", "p50-µs", "p99-µs"}
		}
	}
	d := func(v time.Duration) string { return v.String() }
	return []step{
		{id: "ingest", title: "QoS 1 closed loop, fieldgate beside bare mochi, mosquitto, bare mochi syncing (each publish for 1 client, in group commits for more) and a raw fdatasync loop, 1/10/50 clients",
			want: withSyncMochi(withRaw(all(append(loadUnits, "cpu-µs/reading")), "ceiling"), append(loadUnits, "cpu-µs/reading")),
			run:  compareStep("-clients", "1,10,50", "-duration", d(sz.CompareDuration), "-rounds", strconv.Itoa(sz.CompareRounds))},
		{id: "ingest-pipelined", title: "QoS 1, each node keeping 32 publishes in flight (a backlog replay), fieldgate beside bare mochi and mosquitto, 1/10/50 nodes",
			want: withRaw(all(append(loadUnits, "cpu-µs/reading"))),
			run: compareStep("-clients", "1,10,50", "-inflight", strconv.Itoa(pipelined), "-duration", d(sz.CompareDuration),
				"-rounds", strconv.Itoa(sz.CompareRounds))},
		{id: "ingest-qos0", title: "QoS 0 flood (1000 readings/s offered per client), fieldgate beside bare mochi and mosquitto",
			want: qos0Want(), run: compareStep("-clients", "10,50", "-duration", d(sz.CompareDuration), "-rounds", "1", "-qos", "0", "-rate", "1000")},
		{id: "ingest-cpu", title: "CPU per QoS 1 reading at one fixed load (50 clients × 200 readings/s), fieldgate, bare mochi and bare mochi syncing in group commits side by side",
			want: sideBySideWant(), run: sideBySideStep("-clients", "50", "-rate", "200", "-duration", d(sz.CompareDuration), "-rounds", strconv.Itoa(2*sz.CompareRounds))},
		{id: "breakdown", title: "CPU per QoS 1 reading at 50 clients split into stages with perf, fieldgate beside bare mochi",
			want: breakdownWant(), run: breakdownStep("-clients", "50", "-duration", d(sz.CompareDuration), "-rounds", "1")},
		{id: "idle", title: "memory of 200 idle MQTT clients, fieldgate beside mosquitto",
			want: map[string][]string{"idle200": {"fieldgate-rss-MiB", "fieldgate-KiB/client", "fieldgate-anon-KiB/client",
				"mosquitto-rss-MiB", "mosquitto-KiB/client", "mosquitto-anon-KiB/client"}},
			run: goBench("./cmd/fieldgate", "Brokers/idle200", nil, "-benchtime", "1x")},
		{id: "ready", title: "time to READY, empty store beside 1M stored and a full head (cold page cache)",
			want: map[string][]string{"empty": {"ready-ms"}, "1M+head": {"ready-ms"}},
			run:  goBench("./cmd/fieldgate", "Ready", nil, "-benchtime", "5x", "-timeout", "30m")},
		{id: "drain", title: "uplink drain rate (fieldgate-bench drain)",
			want: map[string][]string{"": {"readings", "readings/s", "seconds", "wire-B/reading", "json-B/reading", "duplicates", "batches"}},
			run:  drainStep(sz.DrainReadings)},
		{id: "live", title: "live readings' latency to the cloud while a backlog drains",
			want: map[string][]string{"backlog+live1000": {"readings/s", "live-p50-ms", "live-p99-ms"}},
			run: goBench("./uplink", `Drain/backlog\+live1000`, []string{"FIELDGATE_TEST_BENCH_BACKLOG=" + strconv.Itoa(sz.LiveBacklog)},
				"-benchtime", "1x", "-timeout", "30m")},
		{id: "cloud-drain", title: "a backlog drained into PostgreSQL through fieldgate-cloud beside the in-memory sink",
			want: map[string][]string{"sink": {"readings/s"}, "postgres": {"readings/s", "pg-B/reading", "pg-batches-B/reading"}},
			run: goBench("./uplink", "DrainInto", []string{"FIELDGATE_TEST_BENCH_CLOUD_BACKLOG=" + strconv.Itoa(sz.DrainReadings)},
				"-benchtime", "1x", "-count", "3", "-timeout", "30m")},
		{id: "cloud-receivers", title: "10 gateways uploading at once into PostgreSQL through one fieldgate-cloud, then two",
			want: map[string][]string{"receivers=1": {"readings/s", "p50-ms", "p99-ms"}, "receivers=2": {"readings/s", "p50-ms", "p99-ms"}},
			run:  goBench("./cmd/fieldgate-cloud", "Receivers", nil, "-benchtime", "1x", "-count", "3", "-timeout", "30m")},
		{id: "cloud-store", title: "storing a 500-reading batch in PostgreSQL: one statement with unnest beside COPY into a temporary table",
			want: map[string][]string{"unnest": {"readings/s"}, "copy": {"readings/s"}},
			run:  goBench("./cmd/fieldgate-cloud/receiver", "StoreBatch", nil, "-benchtime", "400x")},
		{id: "append", title: "the store's durable append: group committer beside bbolt Update and Batch", want: appendWant,
			run: goBench("./store", "Append", nil, "-benchtime", sz.AppendTime)},
		{id: "maintenance", title: "commits of 20 clients beside readers scanning a large series, and beside a compaction",
			want: maintenanceWant(),
			run: goBench("./store", "CommitUnderMaintenance", []string{"FIELDGATE_TEST_BENCH_SERIES=" + strconv.Itoa(sz.ScanSeries)},
				"-benchtime", "1x", "-timeout", "60m")},
		{id: "site", title: "bytes a typical site's block device receives per reading: QoS 1 and QoS 0, default settings and the Pi package's",
			want: siteWant(),
			run:  goBench("./cmd/fieldgate", "SiteWrites", siteEnv(sz.SiteDuration), "-benchtime", "1x", "-timeout", "90m")},
		{id: "query", title: "the last hour of a sensor from a small and a large store",
			want: map[string][]string{"readings=100000": {"ns/op"}, fmt.Sprintf("readings=%d", sz.QueryLarge): {"ns/op"}},
			run: goBench("./store", "QueryLastHour", []string{"FIELDGATE_TEST_BENCH_LARGE=" + strconv.Itoa(sz.QueryLarge)},
				"-benchtime", "300x", "-timeout", "60m")},
		{id: "summarize", title: "a day of a 1 Hz sensor reduced to a 1000-point series",
			want: map[string][]string{"file": {"ns/op", "allocs/op"}, "head": {"ns/op", "allocs/op"}},
			run:  goBench("./store", "Summarize", nil, "-benchtime", "2s")},
		{id: "api", title: fmt.Sprintf("REST API under wrk, %d readings stored, beside fieldgate %s (before the write-ahead log)", sz.APIReadings, baseline),
			want: map[string][]string{"status": apiPairedUnits, "series-1000": apiPairedUnits},
			run:  apiStep(sz.APIReadings)},
		{id: "api-small", title: fmt.Sprintf("REST API under wrk, %d readings stored", sz.APISmall),
			want: map[string][]string{"status": {"req/s", "p50-ms", "p99-ms"}, "series-1000": {"req/s", "p50-ms", "p99-ms"}},
			run: goBench("./cmd/fieldgate", "API", []string{"FIELDGATE_TEST_BENCH_API_READINGS=" + strconv.Itoa(sz.APISmall)},
				"-benchtime", "1x", "-timeout", "60m")},
		{id: "attack", title: "a password guesser on the LAN: /healthz beside it, CONNACKs it gets, refusal time known vs unknown id",
			want: map[string][]string{"": {"healthz-idle-p50-ms", "healthz-attack-p50-ms", "healthz-attack-p90-ms", "attack-connacks/s", "refuse-known-ms", "refuse-unknown-ms"}},
			run:  goBench("./cmd/fieldgate", "LoginAttack", nil, "-benchtime", "1x")},
		{id: "clientids", title: "memory over 100,000 unique MQTT client ids",
			want: map[string][]string{"": {"heap-KiB-at-10k", "heap-KiB-at-100k", "KiB-per-1000-ids", "clients-held"}},
			run:  goBench("./broker", "UniqueClientIDs", nil, "-benchtime", "1x")},
		{id: "sensors", title: "CPU per poll cycle of 8 SHT3x sensors",
			want: map[string][]string{"": {"cpu-µs/cycle", "allocs/reading", "ns/op"}},
			run:  goBench("./sensors", "PollCycle", nil, "-benchtime", "40x", "-count", "3")},
		{id: "page", title: "the web page's weight and first paint in Chromium",
			want: map[string][]string{"": {"bytes", "decoded-bytes", "requests", "fcp-median-ms", "fcp-min-ms", "fcp-max-ms", "loads"}},
			run:  testSummary("./cmd/fieldgate", "TestWebPage", "-web.summary", "10m")},
		{id: "chaos", title: fmt.Sprintf("the chaos run, %s of faults", sz.Chaos),
			want: map[string][]string{"": chaosUnits},
			run:  testSummary("./cmd/fieldgate/chaos", "TestChaos", "-chaos.summary", (sz.Chaos + 30*time.Minute).String(), "-chaos.duration="+sz.Chaos.String())},
	}
}

// baseline is the last commit before the write-ahead log: the API's
// figures are measured on it too, in the same run.
const baseline = "84d5f75"

// withSyncMochi adds bare mochi syncing each publish, which serves the one
// client, and bare mochi syncing in group commits, which serves more, in
// units, and fieldgate's rate ÷ the first's.
func withSyncMochi(w map[string][]string, units []string) map[string][]string {
	w[targetSyncMochi+"/clients=1"] = units
	w[targetGroupMochi+"/clients=10"] = units
	w[targetGroupMochi+"/clients=50"] = units
	w["raw"] = append(w["raw"], "fieldgate÷mochi-sync")
	return w
}

// withRaw adds the raw fdatasync loop's figures, and more of its units
// (the closed loop's ceiling), to an ingest step's.
func withRaw(w map[string][]string, more ...string) map[string][]string {
	w["raw"] = append([]string{"syncs/s", "fieldgate÷raw"}, more...)
	return w
}

// qos0Want lists the QoS 0 flood's figures.
func qos0Want() map[string][]string {
	w := map[string][]string{}
	for _, c := range []string{"clients=10", "clients=50"} {
		w["fieldgate/"+c] = []string{"readings/s", "stored/s", "cpu-%", "cpu-µs/reading", "anon-MiB"}
		w["mosquitto/"+c] = []string{"readings/s", "cpu-%", "cpu-µs/reading", "anon-MiB"}
		w["mochi/"+c] = w["mosquitto/"+c]
	}
	return w
}

// breakdownWant lists the breakdown's figures: each stage's CPU µs per
// reading, and the whole, for fieldgate and bare mochi.
func breakdownWant() map[string][]string {
	units := append(stageNames(), "total", "samples")
	return map[string][]string{targetFieldgate: units, targetMochi: units}
}

// breakdownStep runs compare with args, sampling fieldgate and bare mochi
// with perf (Debian's linux-perf), and turns the breakdowns into figures
// named by target, one per stage.
func breakdownStep(args ...string) func(context.Context) (figures, error) {
	return func(ctx context.Context) (figures, error) {
		perf, err := exec.LookPath("perf")
		if err != nil {
			return nil, fmt.Errorf("the breakdown needs perf (apt install linux-perf): %w", err)
		}
		res, err := runCompare(ctx, append(args, "-breakdown", perf))
		if err != nil {
			return nil, err
		}
		f := figures{}
		for _, b := range res.Breakdowns {
			for _, s := range stageNames() {
				f.add(b.Target, s, b.Stages[s])
			}
			f.add(b.Target, "total", b.CPUus)
			f.add(b.Target, "samples", float64(b.Samples))
		}
		return f, nil
	}
}

// maintenanceWant lists the figures of commits beside readers and maintenance.
func maintenanceWant() map[string][]string {
	w := map[string][]string{}
	for _, load := range []string{"quiet", "readers", "compaction"} {
		w[load] = []string{"commits/s", "p50-ms", "p99-ms", "max-ms", "load-rounds"}
	}
	return w
}

// siteEnv sets the site run's span when the sizes fix one (quick runs).
func siteEnv(span time.Duration) []string {
	if span == 0 {
		return nil
	}
	return []string{"FIELDGATE_TEST_BENCH_SITE_DURATION=" + span.String()}
}

// siteWant lists the site run's figures per case.
func siteWant() map[string][]string {
	units := []string{"readings/h", "wchar-B/reading", "disk-B/reading", "disk-MiB/h", "window-s", "span-min"}
	return map[string][]string{"qos1/default": units, "qos1/pi": units, "qos0/default": units, "qos0/pi": units}
}

// chaosUnits are the figures TestChaos writes with -chaos.summary.
var chaosUnits = []string{"minutes", "acknowledged", "not-acknowledged", "in-cloud", "lost", "twice", "duplicate-readings", "replays",
	"starts", "max-backlog", "drain-ms", "rss-first-MiB", "rss-last-MiB", "goroutines-first", "goroutines-last", "rogue-stored",
	"fault:none", "fault:sigkill", "fault:cloud down", "fault:cloud slow", "fault:cloud 503", "fault:cloud resets",
	"fault:cloud drops responses", "fault:descriptors", "fault:disk full", "fault:receiver sigkill", "fault:database restart"}

// goBench runs `go test -bench pattern` in pkg and parses what the
// benchmarks reported.
func goBench(pkg, pattern string, env []string, flags ...string) func(context.Context) (figures, error) {
	return func(ctx context.Context) (figures, error) {
		args := append([]string{"test", "-run", "^$", "-bench", pattern}, flags...)
		out, err := goTool(ctx, env, append(args, pkg)...)
		if err != nil {
			return nil, err
		}
		return parseBench(out), nil
	}
}

// apiPairedUnits are the API benchmark's figures with a build beside it.
var apiPairedUnits = []string{"req/s", "p50-ms", "p99-ms", "before-req/s", "before-p50-ms", "before-p99-ms", "now÷before"}

// apiStep runs the API benchmark over n readings beside the baseline: it
// builds the baseline in a temporary git worktree, fills the baseline's
// store with the baseline's own code (beforeFill, the same readings as the
// benchmark's), and hands both to the benchmark, which alternates between
// the two daemons.
func apiStep(n int) func(context.Context) (figures, error) {
	return func(ctx context.Context) (figures, error) {
		dir, err := os.MkdirTemp("", "fieldgate-baseline-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		wt := filepath.Join(dir, "src")
		if out, err := exec.CommandContext(ctx, "git", "worktree", "add", "--detach", wt, baseline).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("git worktree add %s: %v\n%s", baseline, err, out)
		}
		defer func() { _ = exec.Command("git", "worktree", "remove", "--force", wt).Run() }() // the directory goes anyway
		if err := os.WriteFile(filepath.Join(wt, "cmd", "fieldgate", "zz_report_fill_test.go"), []byte(beforeFill), 0o644); err != nil {
			return nil, err
		}
		data := filepath.Join(dir, "data")
		if err := os.Mkdir(data, 0o755); err != nil {
			return nil, err
		}
		readings := "FIELDGATE_TEST_BENCH_API_READINGS=" + strconv.Itoa(n)
		env := []string{readings, "FIELDGATE_TEST_BENCH_FILL=" + filepath.Join(data, "fieldgate.db")}
		for _, args := range [][]string{
			{"test", "-run", "^$", "-bench", "^BenchmarkReportFill$", "-benchtime", "1x", "-timeout", "60m", "./cmd/fieldgate"},
			{"build", "-tags", "nomsgpack", "-o", filepath.Join(dir, "fieldgate"), "./cmd/fieldgate"},
		} {
			if _, err := goToolIn(ctx, wt, env, args...); err != nil {
				return nil, fmt.Errorf("at %s: %w", baseline, err)
			}
		}
		return goBench("./cmd/fieldgate", "API", []string{readings, "FIELDGATE_TEST_BENCH_API_BEFORE=" + dir},
			"-benchtime", "1x", "-timeout", "60m")(ctx)
	}
}

// beforeFill is added to the baseline's worktree: a benchmark that fills
// a store at FIELDGATE_TEST_BENCH_FILL with the baseline's fillSeries, as its
// own BenchmarkAPI does.
const beforeFill = `package main

import (
	"os"
	"strconv"
	"testing"
)

func BenchmarkReportFill(b *testing.B) {
	n, err := strconv.Atoi(os.Getenv("FIELDGATE_TEST_BENCH_API_READINGS"))
	if err != nil {
		b.Fatal(err)
	}
	fillSeries(b, os.Getenv("FIELDGATE_TEST_BENCH_FILL"), n)
}
`

// testSummary runs one test of pkg that writes its figures to the file
// named by its summary flag, and reads them.
func testSummary(pkg, test, summaryFlag, timeout string, testArgs ...string) func(context.Context) (figures, error) {
	return func(ctx context.Context) (figures, error) {
		dir, err := os.MkdirTemp("", "fieldgate-report-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		file := filepath.Join(dir, "summary.json")
		args := append([]string{"test", "-count=1", "-run", "^" + test + "$", "-timeout", timeout, pkg,
			"-args", summaryFlag + "=" + file}, testArgs...)
		if _, err := goTool(ctx, nil, args...); err != nil {
			return nil, err
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s wrote no summary (did it skip?): %w", test, err)
		}
		var m map[string]float64
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
		f := figures{}
		for k, v := range m {
			f.add("", k, v)
		}
		return f, nil
	}
}

// goTool runs the go command with env added, returning its output or an
// error with the output's tail.
func goTool(ctx context.Context, env []string, args ...string) ([]byte, error) {
	return goToolIn(ctx, "", env, args...)
}

// goToolIn is goTool run in dir ("": the current directory).
func goToolIn(ctx context.Context, dir string, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		tail := out[max(0, len(out)-4000):]
		return nil, fmt.Errorf("%s go %s: %v\n%s", strings.Join(env, " "), strings.Join(args, " "), err, tail)
	}
	return out, nil
}

// procsSuffix is the -GOMAXPROCS suffix go test appends to benchmark names.
var procsSuffix = regexp.MustCompile(`-\d+$`)

// parseBench reads go test's benchmark lines ("BenchmarkX/sub-2 N v unit
// v unit …") into figures named by the sub-benchmark ("" for a benchmark
// without any); -count repeats become several values.
func parseBench(out []byte) figures {
	f := figures{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 || len(fs)%2 != 0 || !strings.HasPrefix(fs[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(fs[1]); err != nil {
			continue
		}
		name := procsSuffix.ReplaceAllString(fs[0], "")
		if _, sub, ok := strings.Cut(name, "/"); ok {
			name = sub
		} else {
			name = ""
		}
		for i := 2; i+1 < len(fs); i += 2 {
			if v, err := strconv.ParseFloat(fs[i], 64); err == nil {
				f.add(name, fs[i+1], v)
			}
		}
	}
	return f
}

// compared is what compare -json prints.
type compared struct {
	Runs       []report
	Ratios     []ratio
	Breakdowns []breakdown
}

// runCompare runs compare with args in-process and decodes its JSON.
func runCompare(ctx context.Context, args []string) (compared, error) {
	var out, errOut bytes.Buffer
	if err := compareCmd(ctx, append(args, "-json"), &out, &errOut); err != nil {
		return compared{}, fmt.Errorf("%w\n%s", err, errOut.String())
	}
	var res compared
	err := json.Unmarshal(out.Bytes(), &res)
	return res, err
}

// compareStep runs compare with args and turns its runs into figures named
// "target/clients=N".
func compareStep(args ...string) func(context.Context) (figures, error) {
	return func(ctx context.Context) (figures, error) {
		res, err := runCompare(ctx, args)
		if err != nil {
			return nil, err
		}
		f := figures{}
		for _, r := range res.Ratios {
			if r.RawSyncRate > 0 {
				f.add("raw", "syncs/s", r.RawSyncRate)
				f.add("raw", "fieldgate÷raw", r.RawRatio)
			}
			if r.RawCeiling > 0 {
				f.add("raw", "ceiling", r.RawCeiling)
			}
			if r.SyncMochiRatio > 0 {
				f.add("raw", "fieldgate÷mochi-sync", r.SyncMochiRatio)
			}
		}
		for _, r := range res.Runs {
			name := fmt.Sprintf("%s/clients=%d", r.Target, r.Clients)
			if r.Stored > 0 {
				f.add(name, "stored/s", r.StoredPerSec)
			}
			if r.Process != nil {
				f.add(name, "cpu-µs/reading", r.cpuPerReading())
			}
			f.add(name, "readings/s", r.ReadingsPerSec)
			f.add(name, "p50-ms", r.LatencyMs.P50)
			f.add(name, "p99-ms", r.LatencyMs.P99)
			f.add(name, "max-ms", r.LatencyMs.Max)
			f.add(name, "errors", float64(r.Errors+r.Disconnects))
			if p := r.Process; p != nil {
				f.add(name, "cpu-%", p.CPUPercent)
				f.add(name, "rss-MiB", float64(p.RSSPeakKB)/1024)
				f.add(name, "anon-MiB", float64(p.AnonPeakKB)/1024)
			}
		}
		return f, nil
	}
}

// drainStep runs drain over n readings.
func drainStep(n int) func(context.Context) (figures, error) {
	return func(ctx context.Context) (figures, error) {
		var out, errOut bytes.Buffer
		if err := drainCmd(ctx, []string{"-readings", strconv.Itoa(n), "-json"}, &out, &errOut); err != nil {
			return nil, fmt.Errorf("%w\n%s", err, errOut.String())
		}
		var r drainReport
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			return nil, err
		}
		f := figures{}
		for unit, v := range map[string]float64{"readings/s": r.ReadingsPerSec, "seconds": r.Seconds, "wire-B/reading": r.WireBytesPerRdg,
			"json-B/reading": r.JSONBytesPerRdg, "duplicates": float64(r.Duplicates), "batches": float64(r.Batches), "readings": float64(r.Readings)} {
			f.add("", unit, v)
		}
		return f, nil
	}
}
