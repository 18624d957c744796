package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fieldgate/cmd/fieldgate-cloud/receiver/cloudtest"
	"fieldgate/uplink/wire"
)

// BenchmarkReceivers has 10 gateways upload at once, each with 3 batches of
// 500 readings in flight (the sender's defaults), into one PostgreSQL
// through one receiver and then through two (requests alternating), each a
// fieldgate-cloud process. It reports the readings stored per second and
// the batches' latency, request to answer, as the gateways see it. Each
// gateway sends FIELDGATE_TEST_BENCH_CLOUD_BATCHES batches (default 40). Run
// with -benchtime 1x.
func BenchmarkReceivers(b *testing.B) {
	perGateway := 40
	if v, err := strconv.Atoi(os.Getenv("FIELDGATE_TEST_BENCH_CLOUD_BATCHES")); err == nil && v > 0 {
		perGateway = v
	}
	const gateways, size, inFlight = 10, 500, 3
	bodies := make([][][]byte, gateways)
	for g := range bodies {
		for i := range perGateway {
			bodies[g] = append(bodies[g], encodeBatch(b, fmt.Sprintf("gw-%02d", g), uint64(i*size+1), size))
		}
	}
	bin := cloudtest.Build(b)
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("receivers=%d", n), func(b *testing.B) {
			for range b.N {
				rig := cloudtest.Start(b, bin, "gw-00", n)
				tokens := []string{rig.Token}
				for g := 1; g < gateways; g++ {
					tokens = append(tokens, rig.AddGateway(fmt.Sprintf("gw-%02d", g)))
				}
				urls := []string{rig.ReplicaURL(0)}
				if n == 2 {
					urls = append(urls, rig.ReplicaURL(1))
				}
				upload(b, urls, tokens, bodies, size, inFlight)
			}
		})
	}
}

// upload sends every gateway's bodies with inFlight requests at once per
// gateway, alternating between urls, and reports the rate and latencies.
func upload(b *testing.B, urls, tokens []string, bodies [][][]byte, size, inFlight int) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: time.Minute}
	var next atomic.Uint64
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for g := range bodies {
		work := make(chan int, len(bodies[g]))
		for i := range bodies[g] {
			work <- i
		}
		close(work)
		for range inFlight {
			wg.Go(func() {
				for i := range work {
					gw := fmt.Sprintf("gw-%02d", g)
					first := uint64(i*size + 1)
					url := urls[next.Add(1)%uint64(len(urls))] + wire.BatchPath(gw, first, first+uint64(size)-1)
					t0 := time.Now()
					put(b, client, url, tokens[g], wire.IdempotencyKey(gw, "", first, first+uint64(size)-1), bodies[g][i])
					mu.Lock()
					lat = append(lat, time.Since(t0))
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	took := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat)*size)/took.Seconds(), "readings/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// put sends one batch; anything but 200 fails the benchmark.
func put(b *testing.B, client *http.Client, url, token, key string, body []byte) {
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		b.Error(err)
		return
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Idempotency-Key", key)
	res, err := client.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	msg, _ := io.ReadAll(res.Body) // for the error message
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b.Errorf("%s: %d %s", url, res.StatusCode, msg)
	}
}

// encodeBatch is a gateway's batch of n readings from seq first, as the
// sender encodes it: 20 sources, temperature and humidity every 10 s.
func encodeBatch(b *testing.B, gw string, first uint64, n int) []byte {
	body := wire.BatchBody{Gateway: gw, FirstSeq: first, LastSeq: first + uint64(n) - 1}
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(first) * 250 * time.Millisecond)
	for i := range n {
		q, unit, v := "temperature", "Cel", 18+float64((int(first)+i)%700)/100
		if i%2 == 1 {
			q, unit, v = "humidity", "%RH", 40+float64((int(first)+i)%3000)/100
		}
		body.Readings = append(body.Readings, wire.ReadingBody{Seq: first + uint64(i), Source: fmt.Sprintf("esp32-%02d", i/2%20),
			Quantity: q, Value: v, Unit: unit, Time: at.Add(time.Duration(i) * 250 * time.Millisecond).Format(time.RFC3339Nano), Clock: "synced"})
	}
	return gzipJSON(b, body)
}
