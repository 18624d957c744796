package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"

	"fieldgate/store"
	"fieldgate/store/storetest"
)

// BenchmarkSiteWrites measures what the SD card pays for a typical site:
// 20 ESP32 nodes each publishing temperature and humidity every 10 s (at
// random phases, as nodes boot at different times) and 4 local sensors read
// every 10 s — 4.8 readings/s — for FIELDGATE_BENCH_SITE_DURATION (default
// 5m) per case. The store lives on an ext4 file system of its own on a loop
// device (journal on, mounted noatime as on a Pi), and the figure is what
// that block device receives (/sys/block/loopN/stat), journal and
// checkpoints included: the head is checkpointed once per measured span
// (store.head.max_age is set to its length), more often than the
// 10-minute default and the Pi package's 30 minutes, so the checkpoints'
// share is overstated rather than left out. The store is a mature one: it
// starts with two days of the site's readings and keeps one (retention),
// so the file reuses the pages retention frees, as a gateway's does after
// its first day, instead of growing. Cases: QoS 1 with
// store.sync_window 0 and with each window in FIELDGATE_BENCH_SITE_WINDOWS
// (default "1s", the Pi package's), and QoS 0. Needs root (loop device);
// run with -benchtime 1x.
func BenchmarkSiteWrites(b *testing.B) {
	d := 5 * time.Minute
	if v := os.Getenv("FIELDGATE_BENCH_SITE_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			b.Fatal(err)
		}
	}
	windows := "1s"
	if v, ok := os.LookupEnv("FIELDGATE_BENCH_SITE_WINDOWS"); ok {
		windows = v
	}
	type siteCase struct {
		qos    byte
		window string
	}
	cases := []siteCase{{1, "0s"}}
	for _, w := range strings.Split(windows, ",") {
		if w = strings.TrimSpace(w); w != "" {
			cases = append(cases, siteCase{1, w})
		}
	}
	cases = append(cases, siteCase{0, "0s"})
	bin := filepath.Join(b.TempDir(), "fieldgate")
	if out, err := exec.Command("go", "build", "-tags", "nomsgpack", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	for _, sc := range cases {
		b.Run(fmt.Sprintf("qos%d/window=%s", sc.qos, sc.window), func(b *testing.B) {
			dev := storetest.MountLoop(b, 512)
			matureSite(b, filepath.Join(dev.Dir, "fieldgate.db"))
			var sensors strings.Builder
			for i := range 4 {
				fmt.Fprintf(&sensors, "  - name: s%d\n    driver: sim\n    interval: 10s\n", i)
			}
			cfg := filepath.Join(b.TempDir(), "fieldgate.yaml")
			writeFileB(b, cfg, fmt.Sprintf("data_dir: %s\nsensors:\n%smqtt:\n  listen: 127.0.0.1:0\n  allow_anonymous: true\napi:\n  listen: \"\"\nclock:\n  trust: system\nstore:\n  sync_window: %s\n  head:\n    max_age: %s\n  retention:\n    max_age: 24h\n", dev.Dir, sensors.String(), sc.window, d))
			daemon := startDaemon(b, bin, cfg)
			pid := daemon.cmd.Process.Pid
			stop, published := publishers(b, daemon.mqtt, "site", 20, 10*time.Second, sc.qos, true, "temperature", "humidity")
			time.Sleep(75 * time.Second) // every node and sensor past its first reading, retention's first run done
			dev.Sync(b)
			w0, p0, n0 := dev.BytesWritten(b), procIO(b, pid), published()
			b.ResetTimer()
			time.Sleep(d)
			dev.Sync(b)
			w1, p1, n1 := dev.BytesWritten(b), procIO(b, pid), published()
			stop()
			local := 4 * 2 * d.Seconds() / 10 // 4 sensors × 2 quantities every 10 s
			readings := float64(n1-n0)*2 + local
			perHour := time.Hour.Seconds() / d.Seconds()
			b.ReportMetric(readings*perHour, "readings/h")
			b.ReportMetric(float64(p1["wchar"]-p0["wchar"])/readings, "wchar-B/reading")
			b.ReportMetric(float64(w1-w0)/readings, "disk-B/reading")
			b.ReportMetric(float64(w1-w0)*perHour/(1<<20), "disk-MiB/h")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// matureSite fills the store at path with two days of the site's readings
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
	start := time.Now().Add(-48 * time.Hour)
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
