package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// A stage is a part of a broker's path per reading. Each CPU sample of a
// profile is charged to the stage of the innermost frame of its stack that
// a rule names: a syscall, an allocation or a GC assist is charged to the
// code that made it.
type stageRule struct {
	stage    string
	patterns []string // substrings of a frame's symbol
}

// Stages, in the order a reading meets them. The rules are tried in this
// order for each frame, so a specific rule comes before a general one
// (wal's Sync before the rest of wal).
var stageRules = []stageRule{
	{"PUBACK hand-off and write", []string{"mochi-mqtt/server/v2.(*Client).WritePacket", "broker.(*guardConn).Write", "broker.(*ackQueue)", "broker.(*hook).finish", "broker.writePuback", "broker.(*guardConn).tryWrite", "broker.(*guardConn).rawWrite", "broker.(*guardConn).flushUnsent"}},
	{"mochi: read, decode, dispatch", []string{"github.com/mochi-mqtt/server/v2", "broker.(*guardConn)"}},
	{"payload decode and validation", []string{"fieldgate/broker/payload.", "broker.(*hook).decode", "broker.(*hook).clock", "broker.(*quantities)", "fieldgate/store.(*Reading).Validate"}},
	{"activity and per-device limits", []string{"broker.(*activity)", "broker.(*devActivity)", "broker.(*devLimits)"}},
	{"metrics", []string{"github.com/prometheus/"}},
	{"hook: identity, ACL, topic", []string{"fieldgate/broker."}},
	{"log sync (fdatasync)", []string{"fieldgate/store/wal.(*Log).Sync", "fieldgate/store/wal.osFile.Sync"}},
	{"log write", []string{"fieldgate/store/wal.", "fieldgate/store.encodeLogRecord", "fieldgate/store.(*committer).append"}},
	{"head insert", []string{"fieldgate/store.(*head)"}},
	{"checkpoint", []string{"fieldgate/store.(*Store).checkpoint", "go.etcd.io/bbolt"}},
	{"committer hand-off and grouping", []string{"fieldgate/store."}},
}

// Stages of samples no rule names, by where their stack began.
const (
	stageGC    = "Go runtime: background GC"
	stageSched = "Go runtime: scheduler, timers, idle"
	stageOther = "other"
)

// stageOf names the stage of one sample's stack, frames leaf first.
func stageOf(frames []string) string {
	for _, f := range frames {
		for _, r := range stageRules {
			for _, p := range r.patterns {
				if strings.Contains(f, p) {
					return r.stage
				}
			}
		}
	}
	for _, f := range frames {
		if strings.Contains(f, "runtime.gcBgMarkWorker") || strings.Contains(f, "runtime.bgsweep") || strings.Contains(f, "runtime.bgscavenge") {
			return stageGC
		}
	}
	for _, f := range frames {
		if strings.HasPrefix(f, "runtime.") {
			return stageSched
		}
	}
	return stageOther
}

// stageNames lists every stage in display order.
func stageNames() []string {
	var out []string
	for _, r := range stageRules {
		out = append(out, r.stage)
	}
	return append(out, stageGC, stageSched, stageOther)
}

// stageShares reads `perf script` output (samples separated by blank
// lines, a header line then one frame per line: address, symbol+offset,
// object) and returns each stage's share of the samples.
func stageShares(r io.Reader) (map[string]float64, int, error) {
	counts := map[string]int{}
	total := 0
	var frames []string
	inSample := false
	flush := func() {
		if inSample {
			counts[stageOf(frames)]++
			total++
		}
		frames, inSample = frames[:0], false
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] != ' ' && line[0] != '\t':
			flush()
			inSample = true
		default:
			fs := strings.Fields(line)
			if len(fs) >= 2 {
				frames = append(frames, fs[1])
			}
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, 0, err
	}
	shares := map[string]float64{}
	for s, n := range counts {
		shares[s] = float64(n) / float64(max(total, 1))
	}
	return shares, total, nil
}

// profiler records a process's CPU samples with perf, which sees the
// kernel's part of each syscall and the Go runtime's own threads.
type profiler struct {
	cmd  *exec.Cmd
	data string
}

// startPerf starts sampling pid into file data.
func startPerf(ctx context.Context, perf string, pid int, data string) (*profiler, error) {
	cmd := exec.CommandContext(ctx, perf, "record", "-q", "-F", "999", "-g", "-p", fmt.Sprint(pid), "-o", data)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start perf (apt install linux-perf): %w", err)
	}
	time.Sleep(200 * time.Millisecond) // perf attaches to every thread before the load begins
	return &profiler{cmd: cmd, data: data}, nil
}

// stop ends the recording and returns each stage's share of the samples.
func (p *profiler) stop(ctx context.Context, perf string) (map[string]float64, int, error) {
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	if err := p.cmd.Wait(); err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 0 && ee.ExitCode() != -1 {
			return nil, 0, fmt.Errorf("perf record: %w", err)
		}
	}
	script := exec.CommandContext(ctx, perf, "script", "-i", p.data)
	out, err := script.StdoutPipe()
	if err != nil {
		return nil, 0, err
	}
	if err := script.Start(); err != nil {
		return nil, 0, fmt.Errorf("perf script: %w", err)
	}
	shares, n, err := stageShares(out)
	if werr := script.Wait(); err == nil && werr != nil {
		err = fmt.Errorf("perf script: %w", werr)
	}
	return shares, n, err
}

// breakdown is one profiled run: CPU per reading, split into stages.
type breakdown struct {
	Target  string             `json:"target"`
	Clients int                `json:"clients"`
	CPUus   float64            `json:"cpu_us_per_reading"`
	Samples int                `json:"samples"`
	Stages  map[string]float64 `json:"stage_us_per_reading"`
}

func newBreakdown(rep report, shares map[string]float64, samples int) breakdown {
	b := breakdown{Target: rep.Target, Clients: rep.Clients, CPUus: rep.cpuPerReading(), Samples: samples, Stages: map[string]float64{}}
	for s, share := range shares {
		b.Stages[s] = share * b.CPUus
	}
	return b
}

// printBreakdowns prints, per client count, each stage's CPU µs per
// reading for every profiled broker side by side.
func printBreakdowns(w io.Writer, bs []breakdown) error {
	if len(bs) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "CPU µs per reading\t")
	for _, b := range bs {
		fmt.Fprintf(tw, "%s, %d clients\t", b.Target, b.Clients)
	}
	fmt.Fprintln(tw)
	for _, s := range stageNames() {
		fmt.Fprintf(tw, "%s\t", s)
		for _, b := range bs {
			fmt.Fprintf(tw, "%.2f\t", b.Stages[s])
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprint(tw, "total (perf samples)\t")
	for _, b := range bs {
		fmt.Fprintf(tw, "%.2f (%d)\t", b.CPUus, b.Samples)
	}
	fmt.Fprintln(tw)
	return tw.Flush()
}
