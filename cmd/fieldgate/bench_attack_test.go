package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fieldgate/cmd/fieldgate/daemontest"
)

// BenchmarkLoginAttack is the brute force of a LAN attacker: 32 threads,
// each from its own loopback address, send CONNECTs with wrong passwords
// (known and made-up device ids) as fast as the broker answers, while a
// technician's /healthz is timed. It reports /healthz's median and 90th
// percentile latency idle and under the attack, the CONNACKs the attack
// got per second, and how long a refusal takes for a known and an unknown
// device id from a fresh address (before any throttle: equal means the
// timing does not tell which ids exist).
//
//	go test -run XXX -bench LoginAttack -benchtime 1x ./cmd/fieldgate
func BenchmarkLoginAttack(b *testing.B) {
	bin := daemontest.Build(b)
	dir := b.TempDir()
	cfg := filepath.Join(dir, "fieldgate.yaml")
	writeFileB(b, cfg, fmt.Sprintf("data_dir: %s\nsensors: []\nmqtt:\n  listen: 127.0.0.1:0\napi:\n  listen: 127.0.0.1:0\n", dir))
	var out bytes.Buffer
	if err := run(context.Background(), []string{"fieldgate", "device", "add", "esp32-a", "-config", cfg}, envMap(nil), &out, &out); err != nil {
		b.Fatal(err, out.String())
	}
	d := daemontest.Start(b, bin, cfg)
	defer d.Terminate(b)

	refusal := func(local, user string) time.Duration {
		start := time.Now()
		if code, err := rawLogin(d.MQTT, local, user, "wrong-password"); err != nil || code == 0 {
			b.Fatalf("login %s from %s: CONNACK %#x, %v", user, local, code, err)
		}
		return time.Since(start)
	}
	var known, unknown []time.Duration
	for i := range 5 {
		known = append(known, refusal(fmt.Sprintf("127.0.1.%d", 10+i), "esp32-a"))
		unknown = append(unknown, refusal(fmt.Sprintf("127.0.1.%d", 20+i), fmt.Sprintf("ghost-%d", i)))
	}
	idle := timeHealthz(b, d.API, 200)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var answered atomic.Int64
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := fmt.Sprintf("127.0.2.%d", 10+i)
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				user := "esp32-a"
				if n%2 == 1 {
					user = fmt.Sprintf("ghost-%d-%d", i, n)
				}
				if _, err := rawLogin(d.MQTT, local, user, "guess"); err == nil {
					answered.Add(1)
				}
			}
		}()
	}
	time.Sleep(2 * time.Second) // the attack under way
	b.ResetTimer()
	start, a0 := time.Now(), answered.Load()
	attacked := timeHealthz(b, d.API, 200)
	rate := float64(answered.Load()-a0) / time.Since(start).Seconds()
	close(stop)
	wg.Wait()
	b.ReportMetric(ms(percentile(idle, 50)), "healthz-idle-p50-ms")
	b.ReportMetric(ms(percentile(attacked, 50)), "healthz-attack-p50-ms")
	b.ReportMetric(ms(percentile(attacked, 90)), "healthz-attack-p90-ms")
	b.ReportMetric(rate, "attack-connacks/s")
	b.ReportMetric(ms(percentile(known, 50)), "refuse-known-ms")
	b.ReportMetric(ms(percentile(unknown, 50)), "refuse-unknown-ms")
	b.ReportMetric(0, "ns/op")
}

// rawLogin sends a 3.1.1 CONNECT from the loopback address local and
// returns the CONNACK's return code.
func rawLogin(addr, local, user, pass string) (byte, error) {
	dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := dl.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	body := append(append(mqttString("MQTT"), 4, 0xC2, 0, 60), mqttString("x")...)
	body = append(append(body, mqttString(user)...), mqttString(pass)...)
	if _, err := c.Write(mqttPacket(0x10, body)); err != nil {
		return 0, err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil {
		return 0, err
	}
	return ack[3], nil
}

// timeHealthz times n sequential GETs of /healthz.
func timeHealthz(b *testing.B, api string, n int) []time.Duration {
	var ds []time.Duration
	for range n {
		start := time.Now()
		resp, err := http.Get(api + "/healthz")
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		ds = append(ds, time.Since(start))
	}
	return ds
}

func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
