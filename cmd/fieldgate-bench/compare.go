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

// ratio compares fieldgate with mosquitto at one client count.
type ratio struct {
	Clients         int     `json:"clients"`
	FieldgateRate   float64 `json:"fieldgate_readings_per_second"`
	MosquittoRate   float64 `json:"mosquitto_readings_per_second"`
	RateRatio       float64 `json:"rate_ratio"`
	FieldgateP99    float64 `json:"fieldgate_p99_ms"`
	MosquittoP99    float64 `json:"mosquitto_p99_ms"`
	FieldgateRSSMiB float64 `json:"fieldgate_rss_peak_mib"`
	MosquittoRSSMiB float64 `json:"mosquitto_rss_peak_mib"`
	// CPU time each broker spent per reading, and fieldgate's ÷ mosquitto's.
	FieldgateCPUus float64 `json:"fieldgate_cpu_us_per_reading"`
	MosquittoCPUus float64 `json:"mosquitto_cpu_us_per_reading"`
	CPURatio       float64 `json:"cpu_ratio"`
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
}

func compareCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fieldgate-bench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	counts := fs.String("clients", "1,10,50", "client counts to run, comma-separated")
	rounds := fs.Int("rounds", 2, "rounds; each runs every count against both brokers, alternating which goes first")
	bin := fs.String("fieldgate", "", "fieldgate binary (default: go build ./cmd/fieldgate, run from the repository)")
	mosq := fs.String("mosquitto", "mosquitto", "mosquitto binary")
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
		if out, err := exec.CommandContext(ctx, "go", "build", "-tags", "nomsgpack", "-o", *bin, "./cmd/fieldgate").CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/fieldgate (run compare from the repository, or give -fieldgate): %v\n%s", err, out)
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

	var reps []report
	var raw []float64 // per round with one client: the raw loop before and after fieldgate's run, averaged
	for round := range *rounds {
		for _, n := range ns {
			order := []*peer{fg, mq}
			if round%2 == 1 {
				order = []*peer{mq, fg}
			}
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
				rep, err := loadOnce(ctx, p, lf, n, fmt.Sprintf("r%d-%s-%d", round, p.name, n))
				if err != nil {
					return fmt.Errorf("%s with %d clients: %w", p.name, n, err)
				}
				reps = append(reps, rep)
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
		return writeJSON(stdout, map[string]any{"runs": reps, "ratios": ratios})
	}
	if err := printReports(stdout, reps); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	return printRatios(stdout, ratios)
}

// loadOnce runs the fleet against p, watching p's process. For fieldgate
// it also counts the readings stored (committed) during the run, so that a
// QoS 0 run, which has no acknowledgement, reports what reached the store.
func loadOnce(ctx context.Context, p *peer, lf loadFlags, clients int, prefix string) (report, error) {
	watchCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	usage := watchProc(watchCtx, p.cmd.Process.Pid, 200*time.Millisecond)
	before, err := p.committed()
	if err != nil {
		return report{}, err
	}
	c := lf.config(p.addr, fleet.Anonymous(prefix, clients))
	res, err := fleet.Run(ctx, c, lf.duration)
	if err != nil {
		return report{}, err
	}
	cancel()
	rep := newReport(p.name, c, res)
	u, err := usage()
	if err != nil {
		return report{}, err
	}
	rep.Process = &u
	if p.metrics != "" {
		time.Sleep(1500 * time.Millisecond) // queued readings wait up to commit_interval (1 s)
		after, err := p.committed()
		if err != nil {
			return report{}, err
		}
		rep.Stored = int(after - before)
		rep.StoredPerSec = float64(rep.Stored) / rep.Seconds
	}
	return rep, nil
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
		r := ratio{Clients: n}
		var fgN, mqN float64
		for _, rep := range reps {
			if rep.Clients != n {
				continue
			}
			rss := float64(rep.Process.RSSPeakKB) / 1024
			rate := rep.ReadingsPerSec
			if rep.Target == "fieldgate" && rep.QoS == 0 {
				rate = rep.StoredPerSec // no acknowledgement: count what reached the store
			}
			cpu := rep.Process.CPUPercent / 100 * 1e6 / max(rate, 1)
			if rep.Target == "fieldgate" {
				r.FieldgateRate, r.FieldgateP99, r.FieldgateRSSMiB, fgN = r.FieldgateRate+rate, r.FieldgateP99+rep.LatencyMs.P99, max(r.FieldgateRSSMiB, rss), fgN+1
				r.FieldgateCPUus += cpu
			} else {
				r.MosquittoRate, r.MosquittoP99, r.MosquittoRSSMiB, mqN = r.MosquittoRate+rep.ReadingsPerSec, r.MosquittoP99+rep.LatencyMs.P99, max(r.MosquittoRSSMiB, rss), mqN+1
				r.MosquittoCPUus += cpu
			}
		}
		r.FieldgateRate, r.FieldgateP99, r.FieldgateCPUus = r.FieldgateRate/fgN, r.FieldgateP99/fgN, r.FieldgateCPUus/fgN
		r.MosquittoRate, r.MosquittoP99, r.MosquittoCPUus = r.MosquittoRate/mqN, r.MosquittoP99/mqN, r.MosquittoCPUus/mqN
		r.RateRatio = r.FieldgateRate / r.MosquittoRate
		r.CPURatio = r.FieldgateCPUus / r.MosquittoCPUus
		if n == 1 && len(raw) > 0 {
			var ceiling float64
			r.RawSyncRate, r.RawRatio, ceiling = rawRatio(reps, raw)
			if closed {
				r.RawCeiling = ceiling
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
	fmt.Fprintln(tw, "clients\tfieldgate readings/s\tmosquitto readings/s\tratio\tfieldgate p99 ms\tmosquitto p99 ms\tfieldgate CPU µs/reading\tmosquitto CPU µs/reading\tCPU ratio\tfieldgate RSS MiB\tmosquitto RSS MiB\traw fdatasync/s\tfieldgate ÷ raw\tceiling ÷ raw\t")
	for _, r := range rs {
		rawCol, ratioCol, ceilCol := "-", "-", "-"
		if r.RawSyncRate > 0 {
			rawCol, ratioCol = fmt.Sprintf("%.0f", r.RawSyncRate), fmt.Sprintf("%.2f", r.RawRatio)
		}
		if r.RawCeiling > 0 {
			ceilCol = fmt.Sprintf("%.2f", r.RawCeiling)
		}
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%.1f\t%.1f\t%.2f\t%.1f\t%.1f\t%s\t%s\t%s\t\n", r.Clients, r.FieldgateRate, r.MosquittoRate, r.RateRatio,
			r.FieldgateP99, r.MosquittoP99, r.FieldgateCPUus, r.MosquittoCPUus, r.CPURatio, r.FieldgateRSSMiB, r.MosquittoRSSMiB, rawCol, ratioCol, ceilCol)
	}
	return tw.Flush()
}

// startFieldgate runs the daemon with an anonymous loopback broker, no
// sensors, no API, and its store in dir: every QoS 1 reading fsync'd before
// its PUBACK.
func startFieldgate(ctx context.Context, bin, dir string) (*peer, error) {
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
	p, err := startPeer(ctx, "fieldgate", port, exec.CommandContext(ctx, bin, "-config", cfg), filepath.Join(dir, "fieldgate.log"))
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
	return startPeer(ctx, "mosquitto", port, exec.CommandContext(ctx, bin, "-c", cfg), filepath.Join(dir, "mosquitto.log"))
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
