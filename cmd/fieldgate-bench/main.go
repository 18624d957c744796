// Command fieldgate-bench measures fieldgate from outside, the way a
// skeptical field engineer would.
//
// Usage:
//
//	fieldgate-bench run     -broker HOST:PORT [-clients N] [-rate R] [-qos Q] [-shape S] [-duration D]
//	                        [-credentials FILE] [-pid PID] [-acked FILE] [-json]
//	fieldgate-bench compare [-clients 1,10,50] [-duration D] [-rounds N] [-fieldgate BIN] [-json]
//	fieldgate-bench ab      -a BUILD -b BUILD -rate R [-clients N] [-duration D] [-rounds N] [-json]
//	fieldgate-bench drain   [-readings N] [-json]
//	fieldgate-bench mochi   [-listen ADDR] [-sync DIR [-group]]
//	fieldgate-bench nosync  PROGRAM [ARG…]
//	fieldgate-bench report  [-o docs/BENCHMARKS.md] [-quick] [-chaos D] [-only STEP,…] [-list]
//
// run simulates a fleet of ESP32 nodes over real MQTT and reports
// readings/s, PUBACK latency and, for a process id, its CPU and memory.
// compare runs the same load against fieldgate, the broker library it
// is built on run bare (mochi with an allow-all hook, storing nothing:
// the mochi command) and Debian's mosquitto (persistence on), all
// started by the command, taking turns, and prints the ratios; in a
// closed loop it also runs the library durable, syncing each publish
// before its PUBACK (one client) or syncing them in group commits
// (more): the floor of a broker on mochi that acknowledges only what is
// on disk. ab runs two builds, or a build and one of those, side by
// side under one fixed load and compares their CPU per reading. drain
// fills a store, starts the reference receiver and measures how fast
// the uplink empties it. nosync runs a program whose fsync and
// fdatasync calls return at once, unperformed: a daemon's CPU without
// the price of its syncs, for measuring only. report runs all of these
// and the packages' benchmarks, and writes docs/BENCHMARKS.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "fieldgate-bench:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: fieldgate-bench run|compare|ab|drain|mochi|nosync|report [flags]   (-h after a command lists its flags)
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		_, _ = io.WriteString(stderr, usage)
		return errors.New("missing command")
	}
	switch args[1] {
	case "run":
		return runCmd(ctx, args[2:], stdout, stderr)
	case "compare":
		return compareCmd(ctx, args[2:], stdout, stderr)
	case "ab":
		return abCmd(ctx, args[2:], stdout, stderr)
	case "mochi":
		return mochiCmd(ctx, args[2:], stdout, stderr)
	case "drain":
		return drainCmd(ctx, args[2:], stdout, stderr)
	case "report":
		return reportCmd(ctx, args[2:], stdout, stderr)
	case "nosync":
		return nosyncCmd(args[2:], stderr)
	case "help", "-h", "--help":
		_, err := io.WriteString(stdout, usage)
		return err
	}
	_, _ = io.WriteString(stderr, usage)
	return fmt.Errorf("unknown command %q", args[1])
}

// writeJSON prints v indented: the machine-readable form of every report.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
