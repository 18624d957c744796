package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"fieldgate/cmd/fieldgate-bench/fleet"
)

// peer is a broker process the command started.
type peer struct {
	name    string
	addr    string
	cmd     *exec.Cmd
	metrics string // fieldgate's /metrics URL, to count what it stored
}

func (p *peer) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// Targets of compare, as their runs name them.
const (
	targetFieldgate = "fieldgate"
	targetMochi     = "mochi"
	targetMosquitto = "mosquitto"
	// targetSyncMochi is bare mochi syncing each publish before its PUBACK:
	// run with one client in a closed loop, beside fieldgate.
	targetSyncMochi = "mochi-sync"
	// targetGroupMochi is bare mochi syncing publishes in group commits
	// before their PUBACKs: ab's floor for a durable broker with many
	// clients.
	targetGroupMochi = "mochi-group"
)

// targetFigures are one broker's means over the rounds at one client count.
type targetFigures struct {
	// Rate is readings/s: acknowledged, or for fieldgate at QoS 0 stored.
	Rate   float64 `json:"readings_per_second"`
	P99    float64 `json:"p99_ms"`
	RSSMiB float64 `json:"rss_peak_mib"`
	// CPUus is the CPU time the broker process spent per reading.
	CPUus float64 `json:"cpu_us_per_reading"`
}

// ratio compares fieldgate with bare mochi and with mosquitto at one
// client count.
type ratio struct {
	Clients int                      `json:"clients"`
	Targets map[string]targetFigures `json:"targets"`
	// MochiRateRatio and MochiCPURatio are fieldgate's rate and CPU per
	// reading ÷ bare mochi's: what fieldgate's own path costs above the
	// library's floor.
	MochiRateRatio float64 `json:"mochi_rate_ratio"`
	MochiCPURatio  float64 `json:"mochi_cpu_ratio"`
	// RateRatio and CPURatio are the same ÷ mosquitto's.
	RateRatio float64 `json:"rate_ratio"`
	CPURatio  float64 `json:"cpu_ratio"`
	// RawSyncRate is a bare write+fdatasync loop on the same disk, run
	// right before and right after each round's fieldgate run (the durable
	// limit of one client); RawRatio is the mean over rounds of fieldgate's
	// rate ÷ that round's raw rate. Set for one client at QoS 1.
	RawSyncRate float64 `json:"raw_sync_per_second,omitempty"`
	RawRatio    float64 `json:"fieldgate_raw_ratio,omitempty"`
	// RawCeiling is the most any broker could reach of the raw rate with
	// one closed-loop client, each PUBACK after its own sync: a reading
	// costs at least a sync (1 ÷ raw) and a round trip without a disk
	// (1 ÷ mosquitto's rate), so the ceiling is mosquitto ÷ (mosquitto +
	// raw), averaged over rounds. Set with one publish in flight.
	RawCeiling float64 `json:"raw_ceiling,omitempty"`
	// CeilingRatio is fieldgate's rate ÷ that ceiling's: RawRatio ÷
	// RawCeiling.
	CeilingRatio float64 `json:"fieldgate_ceiling_ratio,omitempty"`
	// SyncMochiRatio is fieldgate's rate ÷ that of bare mochi syncing each
	// publish before its PUBACK: the library's own rate when it pays what
	// the ceiling charges, measured rather than summed. Set for one client
	// in a closed loop.
	SyncMochiRatio float64 `json:"fieldgate_sync_mochi_ratio,omitempty"`
	// GroupRateRatio and GroupCPURatio are fieldgate's rate and CPU per
	// reading ÷ those of bare mochi syncing publishes in group commits:
	// what fieldgate costs above the library's own floor for a durable
	// broker. Set for more than one client in a closed loop.
	GroupRateRatio float64 `json:"fieldgate_group_mochi_rate_ratio,omitempty"`
	GroupCPURatio  float64 `json:"fieldgate_group_mochi_cpu_ratio,omitempty"`
}

func compareCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fieldgate-bench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	counts := fs.String("clients", "1,10,50", "client counts to run, comma-separated")
	rounds := fs.Int("rounds", 2, "rounds; each runs every count against the three brokers, each going first in turn")
	bin := fs.String("fieldgate", "", "fieldgate binary (default: go build ./cmd/fieldgate, run from the repository)")
	mosq := fs.String("mosquitto", "mosquitto", "mosquitto binary")
	breakdownPerf := fs.String("breakdown", "", "perf binary: sample fieldgate and bare mochi with it in the first round at the last client count, and split their CPU per reading into stages")
	self := fs.String("bare", "", "fieldgate-bench binary to serve bare mochi with (default: this program)")
	asJSON := fs.Bool("json", false, "print JSON instead of tables")
	var lf loadFlags
	lf.register(fs, 10*time.Second)
	if err := fs.Parse(args); err != nil {
		return err
	}
	var ns []int
	for _, f := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("-clients %q: want counts like 1,10,50", *counts)
		}
		ns = append(ns, n)
	}
	dir, err := os.MkdirTemp("", "fieldgate-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if *bin == "" {
		*bin = filepath.Join(dir, "fieldgate.bin")
		if err := buildDaemon(ctx, *bin); err != nil {
			return fmt.Errorf("%w (run compare from the repository, or give -fieldgate)", err)
		}
	}
	fg, err := startFieldgate(ctx, *bin, filepath.Join(dir, "fieldgate"))
	if err != nil {
		return err
	}
	defer fg.stop()
	mq, err := startMosquitto(ctx, *mosq, filepath.Join(dir, "mosquitto"))
	if err != nil {
		return err
	}
	defer mq.stop()
	if *self == "" && *breakdownPerf != "" {
		// go run strips the symbol table perf names frames by.
		*self = filepath.Join(dir, "fieldgate-bench.bin")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", *self, "./cmd/fieldgate-bench").CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/fieldgate-bench (run compare from the repository, or give -bare): %v\n%s", err, out)
		}
	}
	bare, err := startMochi(ctx, *self, filepath.Join(dir, "mochi"))
	if err != nil {
		return err
	}
	defer bare.stop()
	// A closed loop waits out each sync: bare mochi syncing each publish
	// (one client), or syncing publishes in group commits (more), shows
	// what that costs the library itself.
	closed := lf.qos == 1 && lf.rate == 0 && lf.inflight == 1
	var synced, grouped *peer
	if closed && slices.Contains(ns, 1) {
		if synced, err = startSyncMochi(ctx, *self, filepath.Join(dir, "mochi-sync")); err != nil {
			return err
		}
		defer synced.stop()
	}
	if closed && slices.ContainsFunc(ns, func(n int) bool { return n > 1 }) {
		if grouped, err = startGroupMochi(ctx, *self, filepath.Join(dir, "mochi-group")); err != nil {
			return err
		}
		defer grouped.stop()
	}

	var reps []report
	var bds []breakdown
	var raw []float64 // per round with one client: the raw loop before and after fieldgate's run, averaged
	for round := range *rounds {
		for _, n := range ns {
			peers := []*peer{fg, bare, mq}
			switch {
			case n == 1 && synced != nil:
				peers = append(peers, synced)
			case n > 1 && grouped != nil:
				peers = append(peers, grouped)
			}
			order := append(peers[round%len(peers):], peers[:round%len(peers)]...) // each goes first in turn
			for _, p := range order {
				// The disk's speed drifts from minute to minute: the raw loop
				// brackets fieldgate's run, so its ratio compares like with like.
				bracket := p == fg && n == 1 && lf.qos == 1 && lf.rate == 0
				var before float64
				if bracket {
					if before, err = rawSync(ctx, dir, lf.duration); err != nil {
						return fmt.Errorf("raw fdatasync loop: %w", err)
					}
				}
				perf := ""
				if *breakdownPerf != "" && round == 0 && n == ns[len(ns)-1] && p != mq {
					perf = *breakdownPerf // mosquitto is C: its stages are not ours to name
				}
				rep, b, err := loadOnce(ctx, p, lf, n, fmt.Sprintf("r%d-%s-%d", round, p.name, n), perf, filepath.Join(dir, p.name+".perf"))
				if err != nil {
					return fmt.Errorf("%s with %d clients: %w", p.name, n, err)
				}
				reps = append(reps, rep)
				if b != nil {
					bds = append(bds, *b)
				}
				if bracket {
					after, err := rawSync(ctx, dir, lf.duration)
					if err != nil {
						return fmt.Errorf("raw fdatasync loop: %w", err)
					}
					raw = append(raw, (before+after)/2)
				}
			}
		}
	}
	ratios := compareRatios(ns, reps, raw, lf.inflight == 1)
	if *asJSON {
		return writeJSON(stdout, map[string]any{"runs": reps, "ratios": ratios, "breakdowns": bds})
	}
	if err := printReports(stdout, reps); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	if err := printRatios(stdout, ratios); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	return printBreakdowns(stdout, bds)
}

// loadOnce runs the fleet against p, watching p's process. For fieldgate
// it also counts the readings stored (committed) during the run, so that a
// QoS 0 run, which has no acknowledgement, reports what reached the store.
//
// With perf set (a perf binary), the run is also sampled with perf and its
// CPU per reading split into stages (see stageRules); profile is the data
// file.
func loadOnce(ctx context.Context, p *peer, lf loadFlags, clients int, prefix, perf, profile string) (report, *breakdown, error) {
	watchCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var prof *profiler
	if perf != "" {
		var err error
		if prof, err = startPerf(ctx, perf, p.cmd.Process.Pid, profile); err != nil {
			return report{}, nil, err
		}
	}
	usage := watchProc(watchCtx, p.cmd.Process.Pid, 200*time.Millisecond)
	before, err := p.committed()
	if err != nil {
		return report{}, nil, err
	}
	c := lf.config(p.addr, fleet.Anonymous(prefix, clients))
	res, err := fleet.Run(ctx, c, lf.duration)
	if err != nil {
		return report{}, nil, err
	}
	cancel()
	var shares map[string]float64
	var samples int
	if prof != nil {
		if shares, samples, err = prof.stop(ctx, perf); err != nil {
			return report{}, nil, err
		}
	}
	rep := newReport(p.name, c, res)
	u, err := usage()
	if err != nil {
		return report{}, nil, err
	}
	rep.Process = &u
	if p.metrics != "" {
		time.Sleep(1500 * time.Millisecond) // queued readings wait up to commit_interval (1 s)
		after, err := p.committed()
		if err != nil {
			return report{}, nil, err
		}
		rep.Stored = int(after - before)
		rep.StoredPerSec = float64(rep.Stored) / rep.Seconds
	}
	if prof == nil {
		return rep, nil, nil
	}
	b := newBreakdown(rep, shares, samples)
	return rep, &b, nil
}

// rate is a run's readings/s: acknowledged, or for fieldgate at QoS 0,
// which has no acknowledgement, what reached its store.
func (r report) rate() float64 {
	if r.Target == targetFieldgate && r.QoS == 0 {
		return r.StoredPerSec
	}
	return r.ReadingsPerSec
}

// cpuPerReading is the CPU time, in µs, the target process spent per
// reading (0 if its usage was not read).
func (r report) cpuPerReading() float64 {
	if r.Process == nil {
		return 0
	}
	return r.Process.CPUPercent / 100 * 1e6 / max(r.rate(), 1)
}

// committed reads fieldgate's count of committed readings (0 for a peer
// without metrics).
func (p *peer) committed() (float64, error) {
	if p.metrics == "" {
		return 0, nil
	}
	res, err := http.Get(p.metrics)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "fieldgate_readings_committed_total "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no fieldgate_readings_committed_total in %s", p.metrics)
}

// compareRatios averages the rounds per client count; raw are the rounds'
// bare fdatasync loops, compared with one client, and closed says each
// client waited for every PUBACK (the round-trip ceiling applies).
func compareRatios(ns []int, reps []report, raw []float64, closed bool) []ratio {
	var out []ratio
	for _, n := range ns {
		r := ratio{Clients: n, Targets: map[string]targetFigures{}}
		runs := map[string]float64{}
		for _, rep := range reps {
			if rep.Clients != n {
				continue
			}
			t := r.Targets[rep.Target]
			t.Rate += rep.rate()
			t.P99 += rep.LatencyMs.P99
			t.CPUus += rep.cpuPerReading()
			if p := rep.Process; p != nil {
				t.RSSMiB = max(t.RSSMiB, float64(p.RSSPeakKB)/1024)
			}
			r.Targets[rep.Target] = t
			runs[rep.Target]++
		}
		for name, t := range r.Targets {
			k := runs[name]
			t.Rate, t.P99, t.CPUus = t.Rate/k, t.P99/k, t.CPUus/k
			r.Targets[name] = t
		}
		fg, bare, mq := r.Targets[targetFieldgate], r.Targets[targetMochi], r.Targets[targetMosquitto]
		r.MochiRateRatio, r.MochiCPURatio = fg.Rate/bare.Rate, fg.CPUus/bare.CPUus
		r.RateRatio, r.CPURatio = fg.Rate/mq.Rate, fg.CPUus/mq.CPUus
		if ms, ok := r.Targets[targetSyncMochi]; ok && n == 1 {
			r.SyncMochiRatio = fg.Rate / ms.Rate
		}
		if mg, ok := r.Targets[targetGroupMochi]; ok && n > 1 {
			r.GroupRateRatio, r.GroupCPURatio = fg.Rate/mg.Rate, fg.CPUus/mg.CPUus
		}
		if n == 1 && len(raw) > 0 {
			var ceiling float64
			r.RawSyncRate, r.RawRatio, ceiling = rawRatio(reps, raw)
			if closed {
				r.RawCeiling, r.CeilingRatio = ceiling, r.RawRatio/ceiling
			}
		}
		out = append(out, r)
	}
	return out
}

// rawRatio pairs each round's one-client runs with that round's raw rate
// (raw, in round order). It returns the raw rates' mean, the mean of the
// rounds' fieldgate ÷ raw, and the mean of the rounds' round-trip ceilings,
// mosquitto ÷ (mosquitto + raw) (see ratio.RawCeiling).
func rawRatio(reps []report, raw []float64) (rate, ratio, ceiling float64) {
	n := float64(len(raw))
	fg, mq := 0, 0
	for _, rep := range reps {
		if rep.Clients != 1 {
			continue
		}
		switch {
		case rep.Target == "fieldgate" && fg < len(raw):
			rate += raw[fg] / n
			ratio += rep.ReadingsPerSec / raw[fg] / n
			fg++
		case rep.Target == "mosquitto" && mq < len(raw):
			ceiling += rep.ReadingsPerSec / (rep.ReadingsPerSec + raw[mq]) / n
			mq++
		}
	}
	return rate, ratio, ceiling
}

func printRatios(w io.Writer, rs []ratio) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "clients\treadings/s fieldgate / bare mochi / mosquitto\tfieldgate ÷ mochi\t÷ mosquitto\t"+
		"CPU µs/reading fieldgate / bare mochi / mosquitto\tfieldgate ÷ mochi\t÷ mosquitto\tp99 ms fieldgate / mochi / mosquitto\t"+
		"RSS MiB fieldgate / mochi / mosquitto\traw fdatasync/s\tfieldgate ÷ raw\tceiling ÷ raw\tfieldgate ÷ ceiling\tmochi-sync readings/s\tfieldgate ÷ mochi-sync\t"+
		"mochi-group readings/s / CPU µs/reading\tfieldgate ÷ mochi-group, rate / CPU\t")
	for _, r := range rs {
		fg, bare, mq := r.Targets[targetFieldgate], r.Targets[targetMochi], r.Targets[targetMosquitto]
		rawCol, ratioCol, ceilCol, fgCeilCol := "-", "-", "-", "-"
		if r.RawSyncRate > 0 {
			rawCol, ratioCol = fmt.Sprintf("%.0f", r.RawSyncRate), fmt.Sprintf("%.2f", r.RawRatio)
		}
		if r.RawCeiling > 0 {
			ceilCol, fgCeilCol = fmt.Sprintf("%.2f", r.RawCeiling), fmt.Sprintf("%.2f", r.CeilingRatio)
		}
		syncCol, fgSyncCol := "-", "-"
		if r.SyncMochiRatio > 0 {
			syncCol, fgSyncCol = fmt.Sprintf("%.0f", r.Targets[targetSyncMochi].Rate), fmt.Sprintf("%.2f", r.SyncMochiRatio)
		}
		groupCol, fgGroupCol := "-", "-"
		if r.GroupCPURatio > 0 {
			mg := r.Targets[targetGroupMochi]
			groupCol, fgGroupCol = fmt.Sprintf("%.0f / %.1f", mg.Rate, mg.CPUus), fmt.Sprintf("%.2f / %.2f", r.GroupRateRatio, r.GroupCPURatio)
		}
		fmt.Fprintf(tw, "%d\t%.0f / %.0f / %.0f\t%.2f\t%.2f\t%.1f / %.1f / %.1f\t%.2f\t%.2f\t%.2f / %.2f / %.2f\t%.1f / %.1f / %.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			r.Clients, fg.Rate, bare.Rate, mq.Rate, r.MochiRateRatio, r.RateRatio,
			fg.CPUus, bare.CPUus, mq.CPUus, r.MochiCPURatio, r.CPURatio,
			fg.P99, bare.P99, mq.P99, fg.RSSMiB, bare.RSSMiB, mq.RSSMiB, rawCol, ratioCol, ceilCol, fgCeilCol, syncCol, fgSyncCol, groupCol, fgGroupCol)
	}
	return tw.Flush()
}

// buildDaemon builds fieldgate, as its package does, into bin; run from
// the repository.
func buildDaemon(ctx context.Context, bin string) error {
	if out, err := exec.CommandContext(ctx, "go", "build", "-tags", "nomsgpack", "-o", bin, "./cmd/fieldgate").CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/fieldgate: %v\n%s", err, out)
	}
	return nil
}

// startFieldgate runs the daemon with an anonymous loopback broker, no
// sensors, no API, and its store in dir: every QoS 1 reading fsync'd before
// its PUBACK.
func startFieldgate(ctx context.Context, bin, dir string) (*peer, error) {
	return startFieldgateAs(ctx, []string{bin}, dir)
}

// startFieldgateAs is startFieldgate running the command argv with
// -config added: the daemon itself, or fieldgate-bench nosync DAEMON.
func startFieldgateAs(ctx context.Context, argv []string, dir string) (*peer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	apiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "config.yaml")
	conf := fmt.Sprintf("data_dir: %s\nsensors: []\nmqtt:\n  listen: 127.0.0.1:%d\n  allow_anonymous: true\n  publish_rate: 1000000\n  publish_burst: 1000000\n  max_connections: 1000\n  max_pending: 1000\napi:\n  listen: 127.0.0.1:%d\nclock:\n  trust: system\nstore:\n  retention:\n    max_age: 0\n", dir, port, apiPort)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	p, err := startPeer(ctx, targetFieldgate, port, exec.CommandContext(ctx, argv[0], append(argv[1:], "-config", cfg)...), filepath.Join(dir, "fieldgate.log"))
	if err != nil {
		return nil, err
	}
	p.metrics = fmt.Sprintf("http://127.0.0.1:%d/metrics", apiPort)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) { // the API starts after MQTT
		if _, err = p.committed(); err == nil || time.Now().After(deadline) {
			return p, err
		}
	}
}

// startMosquitto runs Debian's mosquitto on loopback with persistence on.
func startMosquitto(ctx context.Context, bin, dir string) (*peer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "mosquitto.conf")
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nlog_dest none\n", port, dir)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	return startPeer(ctx, targetMosquitto, port, exec.CommandContext(ctx, bin, "-c", cfg), filepath.Join(dir, "mosquitto.log"))
}

// startMochi runs bare mochi (the mochi command of bin, or of this
// program) on loopback.
func startMochi(ctx context.Context, bin, dir string) (*peer, error) {
	return startMochiAs(ctx, targetMochi, bin, dir)
}

// startSyncMochi runs bare mochi that syncs each publish to a file in dir
// before its PUBACK (mochi -sync).
func startSyncMochi(ctx context.Context, bin, dir string) (*peer, error) {
	return startMochiAs(ctx, targetSyncMochi, bin, dir, "-sync", dir)
}

// startGroupMochi runs bare mochi that syncs publishes to a file in dir in
// group commits before their PUBACKs (mochi -sync -group).
func startGroupMochi(ctx context.Context, bin, dir string) (*peer, error) {
	return startMochiAs(ctx, targetGroupMochi, bin, dir, "-sync", dir, "-group")
}

// startMochiAs runs bin's mochi command with args, under name.
func startMochiAs(ctx context.Context, name, bin, dir string, args ...string) (*peer, error) {
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"mochi", "-listen", fmt.Sprintf("127.0.0.1:%d", port)}, args...)...)
	return startPeer(ctx, name, port, cmd, filepath.Join(dir, "mochi.log"))
}

// startPeer starts cmd, its output going to log, and waits until it
// accepts on port.
func startPeer(ctx context.Context, name string, port int, cmd *exec.Cmd, log string) (*peer, error) {
	out, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child has its own copy
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &peer{name: name, addr: "127.0.0.1:" + strconv.Itoa(port), cmd: cmd}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", p.addr); err == nil {
			_ = c.Close()
			return p, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			b, _ := os.ReadFile(log)
			return nil, fmt.Errorf("%s did not accept on %s; its log:\n%s", name, p.addr, b)
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
