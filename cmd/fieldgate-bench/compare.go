package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
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
	name string
	addr string
	cmd  *exec.Cmd
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
	for round := range *rounds {
		for _, n := range ns {
			order := []*peer{fg, mq}
			if round%2 == 1 {
				order = []*peer{mq, fg}
			}
			for _, p := range order {
				rep, err := loadOnce(ctx, p, lf, n, fmt.Sprintf("r%d-%s-%d", round, p.name, n))
				if err != nil {
					return fmt.Errorf("%s with %d clients: %w", p.name, n, err)
				}
				reps = append(reps, rep)
			}
		}
	}
	ratios := compareRatios(ns, reps)
	if *asJSON {
		return writeJSON(stdout, map[string]any{"runs": reps, "ratios": ratios})
	}
	if err := printReports(stdout, reps); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	return printRatios(stdout, ratios)
}

// loadOnce runs the fleet against p, watching p's process.
func loadOnce(ctx context.Context, p *peer, lf loadFlags, clients int, prefix string) (report, error) {
	watchCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	usage := watchProc(watchCtx, p.cmd.Process.Pid, 200*time.Millisecond)
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
	return rep, nil
}

// compareRatios averages the rounds per client count.
func compareRatios(ns []int, reps []report) []ratio {
	var out []ratio
	for _, n := range ns {
		r := ratio{Clients: n}
		var fgN, mqN float64
		for _, rep := range reps {
			if rep.Clients != n {
				continue
			}
			rss := float64(rep.Process.RSSPeakKB) / 1024
			if rep.Target == "fieldgate" {
				r.FieldgateRate, r.FieldgateP99, r.FieldgateRSSMiB, fgN = r.FieldgateRate+rep.ReadingsPerSec, r.FieldgateP99+rep.LatencyMs.P99, max(r.FieldgateRSSMiB, rss), fgN+1
			} else {
				r.MosquittoRate, r.MosquittoP99, r.MosquittoRSSMiB, mqN = r.MosquittoRate+rep.ReadingsPerSec, r.MosquittoP99+rep.LatencyMs.P99, max(r.MosquittoRSSMiB, rss), mqN+1
			}
		}
		r.FieldgateRate, r.FieldgateP99 = r.FieldgateRate/fgN, r.FieldgateP99/fgN
		r.MosquittoRate, r.MosquittoP99 = r.MosquittoRate/mqN, r.MosquittoP99/mqN
		r.RateRatio = r.FieldgateRate / r.MosquittoRate
		out = append(out, r)
	}
	return out
}

func printRatios(w io.Writer, rs []ratio) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "clients\tfieldgate readings/s\tmosquitto readings/s\tratio\tfieldgate p99 ms\tmosquitto p99 ms\tfieldgate RSS MiB\tmosquitto RSS MiB\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%.1f\t%.1f\t\n", r.Clients, r.FieldgateRate, r.MosquittoRate, r.RateRatio,
			r.FieldgateP99, r.MosquittoP99, r.FieldgateRSSMiB, r.MosquittoRSSMiB)
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
	cfg := filepath.Join(dir, "config.yaml")
	conf := fmt.Sprintf("data_dir: %s\nsensors: []\nmqtt:\n  listen: 127.0.0.1:%d\n  allow_anonymous: true\n  publish_rate: 100000\n  publish_burst: 100000\napi:\n  listen: \"\"\nclock:\n  trust: system\nstore:\n  retention:\n    max_age: 0\n", dir, port)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	return startPeer(ctx, "fieldgate", port, exec.CommandContext(ctx, bin, "-config", cfg), filepath.Join(dir, "fieldgate.log"))
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
