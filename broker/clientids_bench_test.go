package broker

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// BenchmarkUniqueClientIDs connects, logs in and disconnects 100,000 times,
// each time with a client id never used before, the way a node with a
// random id per boot or a scanner would. Connection state used to be kept
// for every id ever seen (+41 MB over 60k ids). It reports the live heap
// after 10k and after all of them, the growth per 1,000 ids between the
// two (flat means ≈ 0), and what the broker still holds at the end.
//
//	go test -run XXX -bench UniqueClientIDs -benchtime 1x ./broker
func BenchmarkUniqueClientIDs(b *testing.B) {
	const total, early = 100_000, 10_000
	st, pw := testStore(b)
	br := startBroker(b, st, Options{Config: Config{ConnectBurst: 1 << 30, ConnectsPerMinute: 1 << 30}})
	heap := func() float64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.HeapAlloc) / 1024
	}
	var atEarly float64
	b.ResetTimer()
	for i := range total {
		if err := connectOnce(br.Addr("tcp"), fmt.Sprintf("boot-%d", i), "esp32-a", pw["esp32-a"]); err != nil {
			b.Fatalf("connect %d: %v", i, err)
		}
		if i+1 == early {
			waitFor(b, func() bool { return conns(br) == 0 })
			atEarly = heap()
		}
	}
	b.StopTimer()
	waitFor(b, func() bool { return conns(br) == 0 && br.server.Clients.Len() <= 1 })
	atEnd := heap()
	b.ReportMetric(atEarly, "heap-KiB-at-10k")
	b.ReportMetric(atEnd, "heap-KiB-at-100k")
	b.ReportMetric((atEnd-atEarly)/float64(total-early)*1000, "KiB-per-1000-ids")
	b.ReportMetric(float64(br.server.Clients.Len()), "clients-held")
	b.ReportMetric(0, "ns/op")
}

// connectOnce logs in over MQTT 3.1.1 with clientID, disconnects and waits
// for the broker to close the connection.
func connectOnce(addr, clientID, user, pass string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(packet(0x10, cat(str("MQTT"), []byte{4, 0xC2, 0, 60}, str(clientID), str(user), str(pass)))); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	ack := make([]byte, 4)
	if _, err := io.ReadFull(r, ack); err != nil {
		return err
	}
	if ack[0] != 0x20 || ack[3] != 0 {
		return fmt.Errorf("CONNACK %x", ack)
	}
	if _, err := c.Write([]byte{0xE0, 0x00}); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, r)
	return err
}
