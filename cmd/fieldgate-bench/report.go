package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// sizes are how long and how large the report's runs are.
type sizes struct {
	CompareDuration time.Duration // each load of compare
	CompareRounds   int
	DrainReadings   int
	AppendTime      string // -benchtime of the store's append benchmark
	QueryLarge      int    // readings in the large store of the query benchmark
	ScanSeries      int    // readings in the series readers scan beside commits
	LiveBacklog     int    // backlog drained while live readings arrive
	APIReadings     int    // readings stored for the API run; APISmall for its peer
	APISmall        int
	SiteDuration    time.Duration // measured span of each site case; 0: its checkpoint interval
	Chaos           time.Duration
}

var (
	fullSizes = sizes{CompareDuration: 10 * time.Second, CompareRounds: 2, DrainReadings: 200_000, AppendTime: "3s",
		QueryLarge: 10_000_000, ScanSeries: 10_000_000, LiveBacklog: 1_000_000, APIReadings: 10_000_000, APISmall: 100_000,
		Chaos: 30 * time.Minute}
	quickSizes = sizes{CompareDuration: 2 * time.Second, CompareRounds: 1, DrainReadings: 20_000, AppendTime: "300ms",
		QueryLarge: 200_000, ScanSeries: 200_000, LiveBacklog: 20_000, APIReadings: 200_000, APISmall: 100_000,
		SiteDuration: 30 * time.Second, Chaos: time.Minute} // a minute: one pass through the chaos faults
)

// reportCommand is the documented command that regenerates the page.
const reportCommand = "go run ./cmd/fieldgate-bench report"

func reportCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fieldgate-bench report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "docs/BENCHMARKS.md", "the page to write")
	quick := fs.Bool("quick", false, "small, short runs (minutes, not an hour): checks the pipeline; the figures are not representative")
	chaos := fs.Duration("chaos", 0, "length of the chaos run's faults (default 30m, 1m with -quick: one pass through the faults)")
	only := fs.String("only", "", "comma-separated step ids: run just these and print their figures as JSON instead of writing the page")
	list := fs.Bool("list", false, "list the steps and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	sz := fullSizes
	if *quick {
		sz = quickSizes
	}
	if *chaos > 0 {
		sz.Chaos = *chaos
	}
	steps := reportSteps(sz)
	if *list {
		for _, st := range steps {
			fmt.Fprintf(stdout, "%-12s %s\n", st.id, st.title)
		}
		return nil
	}
	if _, err := os.Stat("go.mod"); err != nil {
		return errors.New("run report from the repository's root: it builds the daemon and runs the packages' benchmarks")
	}
	if *only != "" {
		var picked []step
		for _, id := range strings.Split(*only, ",") {
			i := slices.IndexFunc(steps, func(s step) bool { return s.id == strings.TrimSpace(id) })
			if i < 0 {
				return fmt.Errorf("-only: no step %q (see -list)", id)
			}
			picked = append(picked, steps[i])
		}
		figs, err := runSteps(ctx, picked, stderr)
		if err != nil {
			return err
		}
		return writeJSON(stdout, figs)
	}
	began := time.Now()
	m := describeMachine(ctx)
	figs, err := runSteps(ctx, steps, stderr)
	if err != nil {
		return err
	}
	cmd := reportCommand
	if *quick {
		cmd += " -quick"
	}
	if *chaos > 0 {
		cmd += " -chaos " + chaos.String()
	}
	var page bytes.Buffer
	if err := renderPage(&page, pageData{Machine: m, Sizes: sz, Baseline: baseline, Quick: *quick, Command: cmd,
		Took: fmt.Sprintf("%.0f minutes", time.Since(began).Minutes()), Figures: figs}); err != nil {
		return err
	}
	if err := os.WriteFile(*out, page.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s (%s)\n", *out, time.Since(began).Round(time.Second))
	return nil
}

// runSteps runs steps in order, checking each reported what the page needs.
func runSteps(ctx context.Context, steps []step, progress io.Writer) (map[string]figures, error) {
	out := map[string]figures{}
	for i, st := range steps {
		fmt.Fprintf(progress, "[%d/%d] %s: %s\n", i+1, len(steps), st.id, st.title)
		t0 := time.Now()
		f, err := st.run(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", st.id, err)
		}
		if err := f.check(st.want); err != nil {
			return nil, fmt.Errorf("%s: %w", st.id, err)
		}
		out[st.id] = f
		fmt.Fprintf(progress, "      done in %s\n", time.Since(t0).Round(time.Second))
	}
	return out, nil
}

// figures are one step's measurements: name → unit → one value per run.
type figures map[string]map[string][]float64

func (f figures) add(name, unit string, v float64) {
	if f[name] == nil {
		f[name] = map[string][]float64{}
	}
	f[name][unit] = append(f[name][unit], v)
}

// check reports what of want (name → units) is missing: a benchmark that
// skipped or was renamed.
func (f figures) check(want map[string][]string) error {
	var missing []string
	for name, units := range want {
		for _, u := range units {
			if len(f[name][u]) == 0 {
				missing = append(missing, fmt.Sprintf("%q %s", name, u))
			}
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("no figure for %s (did a benchmark skip?)", strings.Join(missing, ", "))
	}
	return nil
}

// step is one measurement of the page.
type step struct {
	id, title string
	want      map[string][]string
	run       func(ctx context.Context) (figures, error)
}
