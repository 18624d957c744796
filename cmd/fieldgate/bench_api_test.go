package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"fieldgate/cmd/fieldgate/daemontest"
	"fieldgate/cmd/fieldgate/testenv"
	"fieldgate/store"
)

// BenchmarkAPI measures the REST API under wrk (Debian's) on loopback: GET
// /api/v1/status and a 1000-point series (one day of a 1 Hz sensor) with
// FIELDGATE_TEST_BENCH_API_READINGS readings stored (default 10M: 116 series of
// 86,400 readings), while 20 MQTT nodes publish 10 QoS 1 readings/s each.
// Run with -benchtime 1x; filling 10M readings takes a few minutes.
//
// FIELDGATE_TEST_BENCH_API_BEFORE names the directory of another build to
// measure beside this one: its binary "fieldgate" and "data", a data
// directory it filled the same way. Both daemons then run at once, each
// with its publishers, and wrk alternates between them over apiRounds
// rounds (A B B A …), so that the machine's drift falls on both alike;
// each request reports this build's figures, the other's as before-*, and
// now÷before, this build's requests/s ÷ the other's.
func BenchmarkAPI(b *testing.B) {
	wrk := testenv.Tool(b, "wrk")
	total := 10_000_000
	if v := os.Getenv("FIELDGATE_TEST_BENCH_API_READINGS"); v != "" {
		var err error
		if total, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	dir := b.TempDir()
	fillSeries(b, filepath.Join(dir, "fieldgate.db"), total)
	bin := filepath.Join(b.TempDir(), "fieldgate")
	if out, err := exec.Command("go", "build", "-tags", "nomsgpack", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	targets := []*daemontest.Daemon{apiDaemon(b, bin, dir)}
	if before := os.Getenv("FIELDGATE_TEST_BENCH_API_BEFORE"); before != "" {
		targets = append(targets, apiDaemon(b, filepath.Join(before, "fieldgate"), filepath.Join(before, "data")))
	}
	rounds, wrkTime := 1, "-d15s"
	if len(targets) > 1 {
		rounds, wrkTime = apiRounds, "-d8s"
	}
	series := "/api/v1/sources/node-000/series?quantity=temperature&from=" + benchEnd.Add(-24*time.Hour).Format(time.RFC3339) +
		"&to=" + benchEnd.Format(time.RFC3339) + "&step=86400ms"
	for _, tc := range []struct{ name, path string }{{"status", "/api/v1/status"}, {"series-1000", series}} {
		b.Run(tc.name, func(b *testing.B) {
			sums := make([][3]float64, len(targets)) // req/s, p50, p99 summed over rounds
			for r := range rounds {
				for i := range targets {
					if r%2 == 1 {
						i = len(targets) - 1 - i
					}
					out, err := exec.Command(wrk, "-t2", "-c8", wrkTime, "--latency", targets[i].API+tc.path).CombinedOutput()
					if err != nil {
						b.Fatalf("wrk: %v\n%s", err, out)
					}
					if bytes.Contains(out, []byte("Non-2xx")) {
						b.Fatalf("error answers:\n%s", out)
					}
					rps, p50, p99 := wrkFigures(b, out)
					sums[i][0], sums[i][1], sums[i][2] = sums[i][0]+rps, sums[i][1]+p50, sums[i][2]+p99
					b.Logf("round %d, daemon %d: %s\n%s", r, i, tc.path, out)
				}
			}
			for i, prefix := range []string{"", "before-"}[:len(targets)] {
				b.ReportMetric(sums[i][0]/float64(rounds), prefix+"req/s")
				b.ReportMetric(sums[i][1]/float64(rounds), prefix+"p50-ms")
				b.ReportMetric(sums[i][2]/float64(rounds), prefix+"p99-ms")
			}
			if len(targets) > 1 {
				b.ReportMetric(sums[0][0]/sums[1][0], "now÷before")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// apiRounds is how many times wrk measures each of two daemons per request.
const apiRounds = 4

// apiDaemon starts bin on the store in dataDir, rate limit lifted and
// nothing deleted, with 20 nodes publishing to it until the benchmark ends.
func apiDaemon(b *testing.B, bin, dataDir string) *daemontest.Daemon {
	cfg := filepath.Join(b.TempDir(), "fieldgate.yaml")
	writeFileB(b, cfg, fmt.Sprintf("data_dir: %s\nsensors: []\nmqtt:\n  listen: 127.0.0.1:0\n  allow_anonymous: true\n"+
		"api:\n  listen: 127.0.0.1:0\n  rate_limit: 1000000\n  rate_burst: 1000000\n"+
		"store:\n  max_size: 8GiB\n  retention:\n    max_age: 0\n", dataDir)) // keep every benchmark reading
	d := daemontest.Start(b, bin, cfg)
	stop, _ := publishers(b, d.MQTT, "bench", 20, 100*time.Millisecond, 1, false, "temperature")
	b.Cleanup(stop)
	res, err := http.Get(d.API + "/api/v1/status")
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	var st struct{ Store struct{ Readings int64 } }
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: %d readings stored", bin, st.Store.Readings)
	return d
}

// benchEnd is the time of the newest benchmark reading.
var benchEnd = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// fillSeries writes n readings into a new store: series of 86,400 readings
// (a day at 1 Hz) of node-NNN/temperature, then humidity.
func fillSeries(b *testing.B, path string, n int) {
	st, err := store.Open(store.Options{Path: path, Config: store.Config{MaxSize: 8 << 30}})
	if err != nil {
		b.Fatal(err)
	}
	const perSeries, batch = 86_400, 20_000
	rs := make([]store.Reading, 0, batch)
	for i := 0; i < n; i++ {
		s, k := i/perSeries, i%perSeries
		q := "temperature"
		if s%2 == 1 {
			q = "humidity"
		}
		rs = append(rs, store.Reading{Source: fmt.Sprintf("node-%03d", s/2), Quantity: q, Value: 20 + float64(k%600)/100,
			Unit: "Cel", Time: benchEnd.Add(time.Duration(k-perSeries+1) * time.Second)})
		if len(rs) == batch || i == n-1 {
			if err := st.Append(context.Background(), rs...); err != nil {
				b.Fatal(err)
			}
			rs = rs[:0]
		}
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
}

var (
	wrkRPS = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkP50 = regexp.MustCompile(`50%\s+([\d.]+)(us|ms|s)`)
	wrkP99 = regexp.MustCompile(`99%\s+([\d.]+)(us|ms|s)`)
)

// wrkFigures reads requests/s and the p50 and p99 latencies in ms from
// wrk's output.
func wrkFigures(b *testing.B, out []byte) (rps, p50ms, p99ms float64) {
	m := wrkRPS.FindSubmatch(out)
	if m == nil {
		b.Fatalf("unexpected wrk output:\n%s", out)
	}
	rps, _ = strconv.ParseFloat(string(m[1]), 64)
	return rps, wrkMs(b, wrkP50, out), wrkMs(b, wrkP99, out)
}

// wrkMs reads one latency percentile of wrk's --latency output in ms.
func wrkMs(b *testing.B, re *regexp.Regexp, out []byte) float64 {
	l := re.FindSubmatch(out)
	if l == nil {
		b.Fatalf("unexpected wrk output:\n%s", out)
	}
	v, _ := strconv.ParseFloat(string(l[1]), 64)
	switch string(l[2]) {
	case "us":
		v /= 1000
	case "s":
		v *= 1000
	}
	return v
}
