package main

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"

	"fieldgate/cmd/fieldgate/daemontest"
	"fieldgate/cmd/fieldgate/internal/config"
	"fieldgate/store"
	"fieldgate/store/storetest"
)

// BenchmarkSiteWrites measures what the SD card pays for a typical site:
// 20 ESP32 nodes each publishing temperature and humidity every 10 s (at
// random phases, as nodes boot at different times) and 4 local sensors read
// every 10 s — 4.8 readings/s. Each case's store lives on an ext4 file
// system of its own on a loop device (journal on, mounted noatime as on a
// Pi), and the figure is what that block device receives
// (/sys/block/loopN/stat), journal and checkpoints included. A case is
// measured over one checkpoint interval of its configuration
// (store.head.max_age), so exactly one checkpoint falls in it: 10 minutes
// for the defaults, the Pi package's for its cases;
// FIELDGATE_TEST_BENCH_SITE_DURATION sets both the span and head.max_age of
// every case instead (quick runs). The store is a mature one, as a
// gateway's is after its first day: it starts with 25 hours of the site's
// readings and keeps 24 (retention), so retention's first batch deletes the
// oldest hour during the warm-up and checkpoints reuse the pages it freed
// instead of growing the file. Cases: QoS 1 and QoS 0, each with the
// default store settings and with the Pi package's (deploy/config.yaml),
// named qos1/default, qos1/pi, qos0/default and qos0/pi;
// FIELDGATE_TEST_BENCH_SITE_WINDOWS (e.g. "2s,4s") adds QoS 1 cases with the
// Pi package's settings and other sync windows. The cases run side by
// side, each with its own daemon and device. Needs root (loop device); run
// with -benchtime 1x.
func BenchmarkSiteWrites(b *testing.B) {
	pi := piStore(b)
	defaults := defaultConfig(func(string) string { return "" }).Store
	cases := []*siteCase{
		{name: "qos1/default", qos: 1, window: defaults.SyncWindow, span: defaults.Head.MaxAge},
		{name: "qos1/pi", qos: 1, window: pi.SyncWindow, span: pi.Head.MaxAge},
		{name: "qos0/default", qos: 0, window: defaults.SyncWindow, span: defaults.Head.MaxAge},
		{name: "qos0/pi", qos: 0, window: pi.SyncWindow, span: pi.Head.MaxAge},
	}
	for _, w := range strings.Split(os.Getenv("FIELDGATE_TEST_BENCH_SITE_WINDOWS"), ",") {
		if w = strings.TrimSpace(w); w != "" {
			window, err := time.ParseDuration(w)
			if err != nil {
				b.Fatal(err)
			}
			cases = append(cases, &siteCase{name: "qos1/window=" + w, qos: 1, window: window, span: pi.Head.MaxAge})
		}
	}
	if v := os.Getenv("FIELDGATE_TEST_BENCH_SITE_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		for _, sc := range cases {
			sc.span = d
		}
	}
	bin := filepath.Join(b.TempDir(), "fieldgate")
	if out, err := exec.Command("go", "build", "-tags", "nomsgpack", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	for _, sc := range cases {
		sc.start(b, bin)
	}
	time.Sleep(75 * time.Second) // every node and sensor past its first reading, retention's first batch done
	for _, sc := range cases {
		sc.begin(b)
	}
	slices.SortStableFunc(cases, func(a, b *siteCase) int { return cmp.Compare(a.span, b.span) })
	for _, sc := range cases {
		time.Sleep(time.Until(sc.t0.Add(time.Duration(sc.span))))
		sc.end(b)
	}
	for _, sc := range cases {
		b.Run(sc.name, func(b *testing.B) {
			for unit, v := range sc.figures {
				b.ReportMetric(v, unit)
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// siteCase is one daemon of BenchmarkSiteWrites and its figures.
type siteCase struct {
	name   string
	qos    byte
	window time.Duration // store.sync_window
	span   time.Duration // measured, and store.head.max_age

	dev       *storetest.BlockDevice
	pid       int
	stop      func()
	published func() int64
	t0        time.Time
	w0, n0    uint64
	wchar0    int64
	figures   map[string]float64
}

// start mounts the case's device, fills its store and starts its daemon and
// nodes.
func (sc *siteCase) start(b *testing.B, bin string) {
	sc.dev = storetest.MountLoop(b, 512)
	matureSite(b, filepath.Join(sc.dev.Dir, "fieldgate.db"))
	var sensors strings.Builder
	for i := range 4 {
		fmt.Fprintf(&sensors, "  - name: s%d\n    driver: sim\n    interval: 10s\n", i)
	}
	cfg := filepath.Join(b.TempDir(), "fieldgate.yaml")
	writeFileB(b, cfg, fmt.Sprintf("data_dir: %s\nsensors:\n%smqtt:\n  listen: 127.0.0.1:0\n  allow_anonymous: true\napi:\n  listen: \"\"\nclock:\n  trust: system\nstore:\n  sync_window: %s\n  head:\n    max_age: %s\n  retention:\n    max_age: 24h\n",
		sc.dev.Dir, sensors.String(), time.Duration(sc.window), time.Duration(sc.span)))
	daemon := daemontest.Start(b, bin, cfg)
	sc.pid = daemon.Cmd.Process.Pid
	sc.stop, sc.published = publishers(b, daemon.MQTT, "site", 20, 10*time.Second, sc.qos, true, "temperature", "humidity")
}

// begin starts the measured span.
func (sc *siteCase) begin(b *testing.B) {
	sc.dev.Sync(b)
	sc.t0, sc.w0, sc.wchar0, sc.n0 = time.Now(), sc.dev.BytesWritten(b), procIO(b, sc.pid)["wchar"], uint64(sc.published())
}

// end closes the measured span, stops the nodes and computes the figures.
func (sc *siteCase) end(b *testing.B) {
	sc.dev.Sync(b)
	w1, wchar1, n1 := sc.dev.BytesWritten(b), procIO(b, sc.pid)["wchar"], uint64(sc.published())
	sc.stop()
	d := time.Duration(sc.span)
	local := 4 * 2 * d.Seconds() / 10 // 4 sensors × 2 quantities every 10 s
	readings := float64(n1-sc.n0)*2 + local
	perHour := time.Hour.Seconds() / d.Seconds()
	sc.figures = map[string]float64{
		"readings/h":      readings * perHour,
		"wchar-B/reading": float64(wchar1-sc.wchar0) / readings,
		"disk-B/reading":  float64(w1-sc.w0) / readings,
		"disk-MiB/h":      float64(w1-sc.w0) * perHour / (1 << 20),
		"window-s":        time.Duration(sc.window).Seconds(),
		"span-min":        d.Minutes(),
	}
}

// piStore is the store section of the Pi package's configuration
// (deploy/config.yaml) over the defaults.
func piStore(b *testing.B) store.Config {
	path := filepath.Join("..", "..", "deploy", "config.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	cfg := defaultConfig(func(string) string { return "" })
	if problems, err := config.Decode(data, path, &cfg, config.Where{}); err != nil || len(problems) > 0 {
		b.Fatal(err, problems)
	}
	return cfg.Store
}

// matureSite fills the store at path with 25 hours of the site's readings
// (20 nodes and 4 sensors, temperature and humidity every 10 s).
func matureSite(b *testing.B, path string) {
	st, err := store.Open(store.Options{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	var sources []string
	for i := range 20 {
		sources = append(sources, fmt.Sprintf("site-%02d", i))
	}
	for i := range 4 {
		sources = append(sources, fmt.Sprintf("sim-s%d", i))
	}
	start := time.Now().Add(-25 * time.Hour)
	var rs []store.Reading
	for t := start; t.Before(time.Now()); t = t.Add(10 * time.Second) {
		for _, src := range sources {
			rs = append(rs, store.Reading{Source: src, Quantity: "temperature", Value: 21.5, Unit: "Cel", Time: t},
				store.Reading{Source: src, Quantity: "humidity", Value: 48.2, Unit: "%RH", Time: t})
		}
		if len(rs) >= 10_000 {
			if err := st.Append(context.Background(), rs...); err != nil {
				b.Fatal(err)
			}
			rs = rs[:0]
		}
	}
	if err := st.Append(context.Background(), rs...); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
}

// publishers runs n anonymous nodes named prefix-NN, each publishing one
// message per quantity (plain payloads) every period, from a random phase
// within the first period when spread is set (nodes boot at different
// times). rounds counts the periods published by all nodes.
func publishers(b *testing.B, addr, prefix string, n int, period time.Duration, qos byte, spread bool, quantities ...string) (stop func(), rounds func() int64) {
	values := map[string]string{"temperature": "21.5", "humidity": "48.2"}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var count atomic.Int64
	for i := range n {
		id := fmt.Sprintf("%s-%02d", prefix, i)
		c := paho3.NewClient(paho3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetAutoReconnect(false))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			b.Fatalf("connect %s: %v", id, tok.Error())
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Disconnect(100)
			if spread {
				select {
				case <-done:
					return
				case <-time.After(rand.N(period)):
				}
			}
			t := time.NewTicker(period)
			defer t.Stop()
			for {
				for _, q := range quantities {
					c.Publish("fieldgate/"+id+"/"+q, qos, false, values[q]).WaitTimeout(5 * time.Second)
				}
				count.Add(1)
				select {
				case <-done:
					return
				case <-t.C:
				}
			}
		}()
	}
	return func() { close(done); wg.Wait() }, count.Load
}

// procIO reads /proc/PID/io.
func procIO(b *testing.B, pid int) map[string]int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]int64{}
	for _, l := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok {
			out[k], _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return out
}
