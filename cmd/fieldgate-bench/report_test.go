package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"fieldgate/cmd/fieldgate/testenv"
)

func TestParseBench(t *testing.T) {
	out := []byte(`goos: linux
goarch: amd64
pkg: fieldgate/store
BenchmarkAppend/committer/callers=10-2         	   17286	    175311 ns/op	      5704 readings/s	      1600 p50-µs	      5000 p99-µs
BenchmarkPollCycle-2   	      40	 132000000 ns/op	      2720 cpu-µs/cycle	         8.000 allocs/reading
BenchmarkPollCycle-2   	      40	 131000000 ns/op	      2940 cpu-µs/cycle	         8.000 allocs/reading
BenchmarkDrain/backlog+live1000            	       1	24300000000 ns/op	     41207 readings/s	        83.00 live-p99-ms
    bench_test.go:59: 10000000 readings stored
BenchmarkBroken-2 not a number
PASS
ok  	fieldgate/store	12.3s
`)
	f := parseBench(out)
	if got := f["committer/callers=10"]["readings/s"]; len(got) != 1 || got[0] != 5704 {
		t.Errorf("committer readings/s = %v", got)
	}
	if got := f[""]["cpu-µs/cycle"]; len(got) != 2 || got[0] != 2720 || got[1] != 2940 {
		t.Errorf("-count repeats = %v, want both runs", got)
	}
	if got := f["backlog+live1000"]["live-p99-ms"]; len(got) != 1 || got[0] != 83 {
		t.Errorf("live p99 = %v", got)
	}
	if len(f) != 3 {
		t.Errorf("parsed names %v, want 3", f)
	}
	if err := f.check(map[string][]string{"": {"allocs/reading"}, "gone": {"ns/op"}}); err == nil || !strings.Contains(err.Error(), `"gone" ns/op`) {
		t.Errorf("check of a missing figure: %v", err)
	}
}

func TestThousands(t *testing.T) {
	for _, c := range []struct {
		v    float64
		d    int
		want string
	}{{0, 0, "0"}, {999, 0, "999"}, {1000, 0, "1,000"}, {1234567.891, 2, "1,234,567.89"}, {-12345, 0, "-12,345"}, {-0.001, 1, "0.0"}, {0.16, 2, "0.16"}} {
		if got := thousands(c.v, c.d); got != c.want {
			t.Errorf("thousands(%v, %d) = %q, want %q", c.v, c.d, got, c.want)
		}
	}
}

// TestPageRenders renders the page from figures for exactly what the steps
// promise: the template may ask for nothing a step does not check it got.
func TestPageRenders(t *testing.T) {
	for _, sz := range []sizes{fullSizes, quickSizes} {
		figs := map[string]figures{}
		for _, st := range reportSteps(sz) {
			f := figures{}
			for name, units := range st.want {
				for _, u := range units {
					f.add(name, u, 3)
					f.add(name, u, 5)
				}
			}
			figs[st.id] = f
		}
		var page bytes.Buffer
		err := renderPage(&page, pageData{Machine: machine{CPU: "Test CPU", Cores: 2, MemGiB: 24}, Sizes: sz, Baseline: baseline, Quick: sz == quickSizes,
			Command: reportCommand, Took: "1h0m0s", Figures: figs})
		if err != nil {
			t.Fatal(err)
		}
		s := page.String()
		for _, want := range []string{"# fieldgate benchmarks", "Test CPU, 2 CPUs, 24.0 GiB", "| 1 | 4 | 4 | **1.00** |", "**lost** | **4**"} {
			if !strings.Contains(s, want) {
				t.Errorf("page lacks %q", want)
			}
		}
		if strings.Contains(s, "<no value>") || strings.Contains(s, "NaN") {
			t.Errorf("page has an empty figure:\n%s", s)
		}
		if quick := strings.Contains(s, "Quick run"); quick != (sz == quickSizes) {
			t.Errorf("quick warning shown: %v for sizes %+v", quick, sz)
		}
	}
	if err := renderPage(&bytes.Buffer{}, pageData{Figures: map[string]figures{}}); err == nil || !strings.Contains(err.Error(), "no step measured") {
		t.Errorf("a page without figures: %v", err)
	}
}

// TestReportSteps runs two real steps through the report's pipeline: a
// package benchmark through go test and the drain command in-process.
func TestReportSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs benchmarks")
	}
	testenv.Tool(t, "go")
	t.Chdir("../..")
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"fieldgate-bench", "report", "-only", "sensors,drain"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var figs map[string]figures
	if err := json.Unmarshal(out.Bytes(), &figs); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if cpu := figs["sensors"][""]["cpu-µs/cycle"]; len(cpu) != 3 || cpu[0] <= 0 {
		t.Errorf("sensors cpu per cycle %v, want 3 positive runs", cpu)
	}
	if n := figs["drain"][""]["readings"]; len(n) != 1 || n[0] != float64(fullSizes.DrainReadings) {
		t.Errorf("drained %v readings, want %d", n, fullSizes.DrainReadings)
	}
	if d := figs["drain"][""]["duplicates"]; len(d) != 1 || d[0] != 0 {
		t.Errorf("duplicates %v", d)
	}
	if !strings.Contains(errOut.String(), "[2/2] drain") {
		t.Errorf("progress:\n%s", errOut.String())
	}
	for _, bad := range [][]string{{"-only", "nope"}, {"extra"}} {
		if err := run(context.Background(), append([]string{"fieldgate-bench", "report"}, bad...), &out, &errOut); err == nil {
			t.Errorf("report %v: no error", bad)
		}
	}
}
