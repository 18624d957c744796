package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// abRound is one round of ab: both builds under the same load at once.
type abRound struct {
	A report `json:"a"`
	B report `json:"b"`
	// Ratio is B's CPU per reading ÷ A's.
	Ratio float64 `json:"cpu_ratio"`
}

// abSummary is what ab concludes from its rounds.
type abSummary struct {
	A, B   string
	Rounds []abRound `json:"rounds"`
	// Mean, Min and Max are over the rounds' ratios; Lower counts the
	// rounds in which B spent less CPU per reading than A.
	Mean  float64 `json:"mean_cpu_ratio"`
	Min   float64 `json:"min_cpu_ratio"`
	Max   float64 `json:"max_cpu_ratio"`
	Lower int     `json:"b_lower"`
}

// abCmd compares the CPU per reading of two builds run side by side: in
// each round both start on fresh stores and take the same fixed load at
// the same time, so the machine's drift from minute to minute — ±15% on a
// shared VM, more than most changes move — falls on both alike. Two runs
// of one build agree within about 1% this way. A fixed rate (not a closed
// loop) keeps the faster build from taking CPU from the slower.
func abCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fieldgate-bench ab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	a := fs.String("a", "", "the baseline: a fieldgate binary, mochi (bare mochi, served by this program), mochi-sync or mochi-group (bare mochi syncing each publish before its PUBACK, one at a time or in group commits), or nosync:BIN (the binary under nosync: its syncs answered at once)")
	b := fs.String("b", "", "the candidate: a fieldgate binary, mochi, mochi-sync, mochi-group, or nosync:BIN")
	rounds := fs.Int("rounds", 6, "rounds; A and B start in turn")
	clients := fs.Int("clients", 50, "clients of each build")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	var lf loadFlags
	lf.register(fs, 10*time.Second)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *a == "" || *b == "" {
		return errors.New("ab: give -a and -b: two fieldgate binaries (go build -o), or mochi")
	}
	if lf.rate <= 0 {
		return errors.New("ab: give -rate: under a closed loop the faster build takes CPU from the slower")
	}
	dir, err := os.MkdirTemp("", "fieldgate-bench-ab-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sum := abSummary{A: *a, B: *b}
	for round := range *rounds {
		r, err := abOnce(ctx, [2]string{*a, *b}, filepath.Join(dir, fmt.Sprint(round)), round%2 == 1, lf, *clients)
		if err != nil {
			return fmt.Errorf("round %d: %w", round+1, err)
		}
		sum.Rounds = append(sum.Rounds, r)
	}
	sum.conclude()
	if *asJSON {
		return writeJSON(stdout, sum)
	}
	return sum.print(stdout)
}

// abOnce runs one round: starts both builds (B first if bFirst), loads
// both at once, stops them.
func abOnce(ctx context.Context, bins [2]string, dir string, bFirst bool, lf loadFlags, clients int) (abRound, error) {
	order := []int{0, 1}
	if bFirst {
		order = []int{1, 0}
	}
	var peers [2]*peer
	for _, i := range order {
		p, err := startBuild(ctx, bins[i], filepath.Join(dir, string(rune('a'+i))))
		if err != nil {
			return abRound{}, err
		}
		defer p.stop()
		peers[i] = p
	}
	var reps [2]report
	var errs [2]error
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Go(func() {
			reps[i], _, errs[i] = loadOnce(ctx, p, lf, clients, fmt.Sprintf("%c", 'a'+i), "", "")
		})
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return abRound{}, err
	}
	for i, r := range reps {
		if r.cpuPerReading() <= 0 {
			return abRound{}, fmt.Errorf("%s used no measurable CPU (the kernel counts it in 10 ms ticks): give a longer -duration or a higher -rate", bins[i])
		}
	}
	return abRound{A: reps[0], B: reps[1], Ratio: reps[1].cpuPerReading() / reps[0].cpuPerReading()}, nil
}

// startBuild starts a fieldgate binary, bare mochi for "mochi" (syncing
// each publish for "mochi-sync", in group commits for "mochi-group"), or a
// fieldgate binary under nosync for "nosync:BIN".
func startBuild(ctx context.Context, bin, dir string) (*peer, error) {
	switch bin {
	case targetMochi:
		return startMochi(ctx, "", dir)
	case targetSyncMochi:
		return startSyncMochi(ctx, "", dir)
	case targetGroupMochi:
		return startGroupMochi(ctx, "", dir)
	}
	if b, ok := strings.CutPrefix(bin, nosyncPrefix); ok {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		return startFieldgateAs(ctx, []string{self, "nosync", b}, dir)
	}
	return startFieldgate(ctx, bin, dir)
}

func (s *abSummary) conclude() {
	ratios := make([]float64, 0, len(s.Rounds))
	for _, r := range s.Rounds {
		ratios = append(ratios, r.Ratio)
		if r.Ratio < 1 {
			s.Lower++
		}
	}
	for _, r := range ratios {
		s.Mean += r / float64(len(ratios))
	}
	s.Min, s.Max = slices.Min(ratios), slices.Max(ratios)
}

func (s *abSummary) print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\tA readings/s\tA CPU µs/reading\tB readings/s\tB CPU µs/reading\tB ÷ A\t")
	for i, r := range s.Rounds {
		fmt.Fprintf(tw, "%d\t%.0f\t%.2f\t%.0f\t%.2f\t%.3f\t\n", i+1, r.A.rate(), r.A.cpuPerReading(), r.B.rate(), r.B.cpuPerReading(), r.Ratio)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nA = %s\nB = %s\nCPU per reading, B ÷ A: mean %.3f (min %.3f, max %.3f); B lower in %d of %d rounds\n",
		s.A, s.B, s.Mean, s.Min, s.Max, s.Lower, len(s.Rounds))
	return err
}

// abSide is one ab run of the report's side-by-side step: the key its
// figures are filed under, the builds, and the names their CPU figures
// carry.
type abSide struct {
	key, a, b, aName, bName string
}

// abSides are the report's side-by-side runs of fieldgate binary bin:
// beside bare mochi; the same under nosync; bare mochi syncing in group
// commits beside bare mochi (the library's floor for a durable broker);
// and fieldgate beside that floor.
func abSides(bin string) []abSide {
	return []abSide{
		{"", targetMochi, bin, "mochi", "fieldgate"},
		{"nosync", targetMochi, nosyncPrefix + bin, "mochi", "fieldgate"},
		{"group", targetMochi, targetGroupMochi, "mochi", "group"},
		{"above-group", targetGroupMochi, bin, "group", "fieldgate"},
	}
}

// sideBySideWant lists the figures of the report's side-by-side step.
func sideBySideWant() map[string][]string {
	w := map[string][]string{}
	for _, side := range abSides("") {
		w[side.key] = []string{side.aName + "-cpu-µs/reading", side.bName + "-cpu-µs/reading", "ratio", "ratio-min", "ratio-max"}
	}
	w[""] = append(w[""], "readings/s", "rounds")
	return w
}

// sideBySideStep builds fieldgate and runs ab with bare mochi as A and
// it as B, args added: the report's CPU per reading above the library's
// floor at one load. It runs ab again with fieldgate under nosync as B:
// how much of that is fieldgate's own path, and how much its syncs. And
// it sets both beside bare mochi syncing in group commits: what any
// broker on the library pays to sync before its PUBACKs, and what
// fieldgate pays above that.
func sideBySideStep(args ...string) func(context.Context) (figures, error) {
	return func(ctx context.Context) (figures, error) {
		dir, err := os.MkdirTemp("", "fieldgate-ab-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "fieldgate")
		if err := buildDaemon(ctx, bin); err != nil {
			return nil, err
		}
		f := figures{}
		for _, side := range abSides(bin) {
			s, err := abSideBySide(ctx, side.a, side.b, args)
			if err != nil {
				return nil, err
			}
			n := float64(len(s.Rounds))
			var a, b, rate float64
			for _, r := range s.Rounds {
				a += r.A.cpuPerReading() / n
				b += r.B.cpuPerReading() / n
				rate += r.B.rate() / n
			}
			f.add(side.key, side.aName+"-cpu-µs/reading", a)
			f.add(side.key, side.bName+"-cpu-µs/reading", b)
			f.add(side.key, "ratio", s.Mean)
			f.add(side.key, "ratio-min", s.Min)
			f.add(side.key, "ratio-max", s.Max)
			if side.key == "" {
				f.add("", "readings/s", rate)
				f.add("", "rounds", n)
			}
		}
		return f, nil
	}
}

// abSideBySide runs ab with a as A and b as B.
func abSideBySide(ctx context.Context, a, b string, args []string) (abSummary, error) {
	var out, errOut bytes.Buffer
	var s abSummary
	if err := abCmd(ctx, append([]string{"-a", a, "-b", b, "-json"}, args...), &out, &errOut); err != nil {
		return s, fmt.Errorf("%w\n%s", err, errOut.String())
	}
	err := json.Unmarshal(out.Bytes(), &s)
	return s, err
}
