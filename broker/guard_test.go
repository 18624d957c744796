package broker

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// guardedServer runs a real mochi broker (allowing everyone) behind the
// guard on a loopback port.
func guardedServer(t *testing.T, lim Limits) (string, *guard) {
	t.Helper()
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	g := newGuard(lim, func(string, error, ...any) {})
	tcp := listeners.NewTCP(listeners.Config{ID: "guarded", Address: "127.0.0.1:0"})
	if err := srv.AddListener(&guardedListener{Listener: tcp, g: g, server: srv}); err != nil {
		t.Fatal(err)
	}
	go func() {
		if err := srv.Serve(); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { _ = srv.Close() })
	return tcp.Address(), g
}

// rawClient is a TCP connection speaking MQTT by hand.
type rawClient struct {
	t testing.TB
	net.Conn
	r *bufio.Reader
}

func dial(t testing.TB, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawClient{t: t, Conn: c, r: bufio.NewReader(c)}
}

func (c *rawClient) send(b []byte) {
	c.t.Helper()
	if _, err := c.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// expect reads one packet and checks its first byte.
func (c *rawClient) expect(first byte) {
	c.t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := c.r.ReadByte()
	if err != nil || b != first {
		c.t.Fatalf("read %#x, %v; want a packet starting %#x", b, err, first)
	}
	n, err := c.r.ReadByte() // remaining length < 128 in these tests
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, c.r, int64(n)); err != nil {
		c.t.Fatal(err)
	}
}

// closedWithin reports whether the server closes the connection in time.
func (c *rawClient) closedWithin(d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c.r)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}

// publishes checks that a fresh client can still connect and get a QoS 1
// publish acknowledged: the broker is alive and serving.
func publishes(t *testing.T, addr string) {
	t.Helper()
	c := dial(t, addr)
	c.send(connect(4, "healthy"))
	c.expect(0x20) // CONNACK
	c.send(packet(0x32, cat(str("fieldgate/healthy/temperature"), []byte{0, 9}, []byte("21.5"))))
	c.expect(0x40) // PUBACK
}

func TestCrashingSubscribeClosesOnlyItsConnection(t *testing.T) {
	addr, g := guardedServer(t, Limits{})
	for _, crash := range [][]byte{crashSubscribe, crashSubscribeEmpty} {
		c := dial(t, addr)
		c.send(connect(5, "attacker"))
		c.expect(0x20)
		c.send(crash)
		if !c.closedWithin(5 * time.Second) {
			t.Fatal("connection left open after a malformed SUBSCRIBE")
		}
	}
	publishes(t, addr)
	if s := g.stats(); s.Malformed != 2 {
		t.Errorf("malformed %d, want 2", s.Malformed)
	}
}

func TestHugeAnnouncedPacketsAllocateNothing(t *testing.T) {
	addr, g := guardedServer(t, Limits{})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 4 {
		c := dial(t, addr)
		// An unauthenticated CONNECT announcing 256 MB, then some bytes.
		c.send(append([]byte{0x10, 0xFF, 0xFF, 0xFF, 0x7F}, make([]byte, 4096)...))
		if !c.closedWithin(5 * time.Second) {
			t.Fatal("connection announcing 256 MB left open")
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 8<<20 {
		t.Errorf("heap grew by %d MB for four 256 MB announcements", grew>>20)
	}
	if s := g.stats(); s.Oversized != 4 {
		t.Errorf("oversized %d, want 4", s.Oversized)
	}
	publishes(t, addr)
}

func TestIdleSocketsBeforeConnectAreCappedAndClosed(t *testing.T) {
	addr, g := guardedServer(t, Limits{MaxPending: 50, MaxPendingPerAddress: 50, ConnectTimeout: 500 * time.Millisecond})
	const n = 1000
	conns := make([]*rawClient, n)
	for i := range conns {
		conns[i] = dial(t, addr)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := 0
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !c.closedWithin(3 * time.Second) {
				mu.Lock()
				open++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if open > 0 {
		t.Fatalf("%d of %d idle sockets still open after 3 s", open, n)
	}
	// The server side releases a slot just after the client sees the close.
	deadline := time.Now().Add(5 * time.Second)
	for g.stats().Pending != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// How many are refused depends on how fast the dials come (slots free
	// as the first sockets time out): every socket is either refused at the
	// cap or timed out, at least a full cap's worth timed out, none is left.
	s := g.stats()
	if s.Refused+s.ConnectTimeouts != n || s.Refused == 0 || s.ConnectTimeouts < 50 || s.Pending != 0 {
		t.Errorf("guard stats %+v: want %d refused or timed out, some refused at the cap, ≥ 50 timed out, none pending", s, n)
	}
	publishes(t, addr)
}

func TestMalformedPublishesAndConnectsCloseTheConnection(t *testing.T) {
	addr, g := guardedServer(t, Limits{})
	cases := map[string][]byte{
		"zero-length topic":    packet(0x30, cat(str(""), []byte("1"))),
		"wildcard topic":       packet(0x30, cat(str("fieldgate/#"), []byte("1"))),
		"QoS 3":                packet(0x36, cat(str("a"), []byte{0, 1}, []byte("1"))),
		"invalid UTF-8 topic":  packet(0x30, cat(str("a\xc3\x28"), []byte("1"))),
		"remaining length 5 B": {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01},
	}
	for name, pkt := range cases {
		c := dial(t, addr)
		c.send(connect(4, "c-"+name))
		c.expect(0x20)
		c.send(pkt)
		if !c.closedWithin(5 * time.Second) {
			t.Errorf("%s: connection left open", name)
		}
	}
	c := dial(t, addr)
	c.send(connect(4, "bad\xff\xfeid"))
	if !c.closedWithin(5 * time.Second) {
		t.Error("invalid UTF-8 client id: connection left open")
	}
	publishes(t, addr)
	if s := g.stats(); s.Malformed+s.Oversized != uint64(len(cases))+1 {
		t.Errorf("guard stats %+v, want %d rejections", s, len(cases)+1)
	}
}

// dialFrom connects to addr from the loopback address local (127.0.0.2…).
func dialFrom(t testing.TB, local, addr string) *rawClient {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawClient{t: t, Conn: c, r: bufio.NewReader(c)}
}

// TestOneAddressCannotLockOutTheDevices is the lock-out of a LAN attacker:
// 70 idle sockets from 127.0.0.1, reopened as the guard closes them, used
// to take every pre-CONNECT slot. Each address now has its share; a device
// from 127.0.0.2 connects and publishes, and the attacker's connections
// after CONNECT are capped at their share too.
func TestOneAddressCannotLockOutTheDevices(t *testing.T) {
	addr, g := guardedServer(t, Limits{MaxPending: 64, MaxConnections: 40, ConnectTimeout: 2 * time.Second})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 70 {
		wg.Add(1)
		go func() { // an idle socket, reopened whenever it is closed
			defer wg.Done()
			for {
				c, err := net.Dial("tcp", addr)
				if err == nil {
					buf := make([]byte, 1)
					_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
					_, _ = c.Read(buf)
					_ = c.Close()
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	waitGuard(t, g, func(s GuardStats) bool { return s.Refused > 70 }) // the flood is on
	for i := range 5 {
		c := dialFrom(t, "127.0.0.2", addr)
		c.send(connect(4, fmt.Sprintf("device-%d", i)))
		c.expect(0x20) // CONNACK: the device got in
		c.send(packet(0x32, cat(str(fmt.Sprintf("fieldgate/device-%d/temperature", i)), []byte{0, 9}, []byte("21.5"))))
		c.expect(0x40)
	}
	// After CONNECT too: 127.0.0.1 gets its share of the 40 (a quarter).
	var held []*rawClient
	for i := range 11 {
		c := dial(t, addr)
		c.send(connect(4, fmt.Sprintf("hog-%d", i)))
		held = append(held, c)
	}
	connected := 0
	for _, c := range held {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if b, err := c.r.ReadByte(); err == nil && b == 0x20 {
			connected++
		}
	}
	if lim := 10; connected > lim {
		t.Errorf("%d connections from one address, want at most its share of %d", connected, lim)
	}
}

// waitGuard polls the guard's stats until cond holds.
func waitGuard(t *testing.T, g *guard, cond func(GuardStats) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond(g.stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("guard stats %+v never got there", g.stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
