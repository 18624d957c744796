package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"fieldgate/cmd/fieldgate-bench/fleet"
)

// report is one load run's figures.
type report struct {
	Target         string     `json:"target,omitempty"`
	Clients        int        `json:"clients"`
	QoS            byte       `json:"qos"`
	Shape          string     `json:"shape"`
	RatePerClient  float64    `json:"rate_per_client"` // 0: closed loop
	Seconds        float64    `json:"seconds"`
	Readings       int        `json:"readings"`
	ReadingsPerSec float64    `json:"readings_per_second"`
	LatencyMs      latency    `json:"puback_latency_ms"`
	Errors         int        `json:"errors"`
	Disconnects    int        `json:"disconnects"`
	Process        *procUsage `json:"process,omitempty"`
	// Stored and StoredPerSec count the readings fieldgate committed during
	// the run (compare only): at QoS 0, what reached the store.
	Stored       int     `json:"stored,omitempty"`
	StoredPerSec float64 `json:"stored_per_second,omitempty"`
}

type latency struct {
	P50, P90, P99, Max float64
}

func newReport(target string, c fleet.Config, r *fleet.Result) report {
	ms := func(p float64) float64 { return float64(r.Percentile(p).Microseconds()) / 1000 }
	return report{Target: target, Clients: len(c.Nodes), QoS: c.QoS, Shape: string(c.Shape), RatePerClient: c.Rate,
		Seconds: r.Elapsed.Seconds(), Readings: len(r.Acked), ReadingsPerSec: r.Rate(),
		LatencyMs: latency{P50: ms(50), P90: ms(90), P99: ms(99), Max: ms(100)}, Errors: r.Errors, Disconnects: r.Disconnects}
}

// loadFlags are the flags that describe a fleet, shared by run and compare.
type loadFlags struct {
	rate     float64
	inflight int
	qos      int
	shape    string
	duration time.Duration
}

func (l *loadFlags) register(fs *flag.FlagSet, duration time.Duration) {
	fs.Float64Var(&l.rate, "rate", 0, "publishes per second per client; 0 = closed loop (next publish when the PUBACK is back)")
	fs.IntVar(&l.inflight, "inflight", 1, "QoS 1 publishes each client of a closed loop keeps unacknowledged (more than 1: a node replaying a backlog)")
	fs.IntVar(&l.qos, "qos", 1, "QoS 0 or 1")
	fs.StringVar(&l.shape, "shape", "plain", "payload shape: plain, senml, esphome or tasmota")
	fs.DurationVar(&l.duration, "duration", duration, "how long each load runs")
}

func (l *loadFlags) config(broker string, nodes []fleet.Node) fleet.Config {
	return fleet.Config{Broker: broker, Nodes: nodes, Rate: l.rate, QoS: byte(l.qos), Shape: fleet.Shape(l.shape), InFlight: l.inflight}
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fieldgate-bench run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	broker := fs.String("broker", "127.0.0.1:1883", "MQTT broker host:port")
	clients := fs.Int("clients", 10, "simulated nodes, one MQTT connection each")
	creds := fs.String("credentials", "", `file of "device password" lines (fieldgate device add …); default anonymous nodes`)
	prefix := fs.String("prefix", "bench", "client id prefix of anonymous nodes")
	pid := fs.Int("pid", 0, "process id of the broker, for its CPU and memory (0: none)")
	acked := fs.String("acked", "", `write every acknowledged reading as "device n" lines to this file (to count losses)`)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	var lf loadFlags
	lf.register(fs, 30*time.Second)
	if err := fs.Parse(args); err != nil {
		return err
	}
	nodes := fleet.Anonymous(*prefix, *clients)
	if *creds != "" {
		all, err := readCredentials(*creds)
		if err != nil {
			return err
		}
		if len(all) < *clients {
			return fmt.Errorf("%s holds %d devices, -clients wants %d", *creds, len(all), *clients)
		}
		nodes = all[:*clients]
	}
	var usage func() (procUsage, error)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if *pid > 0 {
		usage = watchProc(runCtx, *pid, 200*time.Millisecond)
	}
	c := lf.config(*broker, nodes)
	res, err := fleet.Run(ctx, c, lf.duration)
	if err != nil {
		return err
	}
	rep := newReport(*broker, c, res)
	if usage != nil {
		cancel()
		u, err := usage()
		if err != nil {
			return fmt.Errorf("process %d: %w", *pid, err)
		}
		rep.Process = &u
	}
	if *acked != "" {
		if err := writeAcked(*acked, res.Acked); err != nil {
			return err
		}
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	return printReports(stdout, []report{rep})
}

// readCredentials reads "device password" lines; # starts a comment.
func readCredentials(path string) ([]fleet.Node, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []fleet.Node
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		id, pw, ok := strings.Cut(t, " ")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want \"device password\"", path, line)
		}
		out = append(out, fleet.Node{ID: id, Password: strings.TrimSpace(pw)})
	}
	return out, sc.Err()
}

func writeAcked(path string, acks []fleet.Ack) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, a := range acks {
		fmt.Fprintf(w, "%s %d\n", a.Node, a.N)
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// printReports prints reports as a table.
func printReports(w io.Writer, reps []report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tclients\tqos\treadings/s\tstored/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\terrors\tcpu %\trss peak MiB\tanon peak MiB\t")
	for _, r := range reps {
		cpu, rss, anon, stored := "-", "-", "-", "-"
		if r.Process != nil {
			cpu = fmt.Sprintf("%.0f", r.Process.CPUPercent)
			rss = fmt.Sprintf("%.1f", float64(r.Process.RSSPeakKB)/1024)
			anon = fmt.Sprintf("%.1f", float64(r.Process.AnonPeakKB)/1024)
		}
		if r.Stored > 0 {
			stored = fmt.Sprintf("%.0f", r.StoredPerSec)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%s\t%s\t%s\t\n", r.Target, r.Clients, r.QoS, r.ReadingsPerSec, stored,
			r.LatencyMs.P50, r.LatencyMs.P90, r.LatencyMs.P99, r.LatencyMs.Max, r.Errors+r.Disconnects, cpu, rss, anon)
	}
	return tw.Flush()
}
