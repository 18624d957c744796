package broker

import (
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"fieldgate/store"
)

// fakeClock is a settable Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// login sends a CONNECT of protocol level v with credentials from the
// loopback address local and returns the CONNACK's reason code.
func login(t testing.TB, b *Broker, local string, v byte, clientID, user, pass string) (byte, *rawClient) {
	t.Helper()
	body := cat(str("MQTT"), []byte{v, 0xC2}, []byte{0, 60})
	if v == 5 {
		body = append(body, 0)
	}
	c := dialFrom(t, local, b.Addr("tcp"))
	c.send(packet(0x10, cat(body, str(clientID), str(user), str(pass))))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(c.r, hdr); err != nil || hdr[0] != 0x20 {
		t.Fatalf("%s as %s: read %x, %v; want a CONNACK", local, user, hdr, err)
	}
	rest := make([]byte, hdr[1])
	if _, err := io.ReadFull(c.r, rest); err != nil {
		t.Fatal(err)
	}
	return rest[1], c
}

// TestMQTTLoginGuessingIsThrottled: 32 threads of failed CONNECTs used to
// cost a bcrypt each, unthrottled. Now a device id gets five failures from
// addresses other than its own, an address ten; then each is refused
// unchecked — CONNACK 0x9F (MQTT 5) or 0x03 (3.1.1), no bcrypt — with a
// wait that doubles. The device itself, at the address it last connected
// from, is not locked out by the guesser.
func TestMQTTLoginGuessingIsThrottled(t *testing.T) {
	st, pw := testStore(t)
	clock := &fakeClock{t: time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)}
	b := startBroker(t, st, Options{Now: clock.now})
	const attacker, home = "127.0.0.1", "127.0.0.2"
	if code, c := login(t, b, home, 4, "a", "esp32-a", pw["esp32-a"]); code != 0 {
		t.Fatalf("esp32-a from its own address: CONNACK %#x", code)
	} else {
		_ = c.Close()
	}
	for i := range 5 {
		if code, _ := login(t, b, attacker, 5, "x", "esp32-a", fmt.Sprint("guess-", i)); code != packets.ErrBadUsernameOrPassword.Code {
			t.Fatalf("guess %d: CONNACK %#x, want 0x86", i, code)
		}
	}
	if code, _ := login(t, b, attacker, 5, "x", "esp32-a", pw["esp32-a"]); code != packets.ErrConnectionRateExceeded.Code {
		t.Fatalf("after five failures, the right password from the guesser's address: CONNACK %#x, want 0x9F unchecked", code)
	}
	if code, _ := login(t, b, attacker, 4, "x", "esp32-a", pw["esp32-a"]); code != 0x03 {
		t.Fatalf("MQTT 3.1.1 while throttled: CONNACK %#x, want 0x03 (server unavailable)", code)
	}
	if code, _ := login(t, b, home, 4, "a", "esp32-a", pw["esp32-a"]); code != 0 {
		t.Fatalf("esp32-a from its own address while the guesser waits: CONNACK %#x", code)
	}
	// The address: five more failures on made-up ids make ten.
	for i := range 5 {
		if code, _ := login(t, b, attacker, 4, "x", fmt.Sprint("ghost-", i), "guess"); code != 0x05 {
			t.Fatalf("ghost %d: CONNACK %#x, want 0x05", i, code)
		}
	}
	if code, _ := login(t, b, attacker, 4, "b", "esp32-b", pw["esp32-b"]); code != 0x03 {
		t.Fatalf("another device from the guessing address: CONNACK %#x, want 0x03", code)
	}
	s := b.Stats()
	if s.AuthFailures != 10 || s.AuthThrottled != 3 {
		t.Errorf("auth failures %d, throttled %d; want 10 and 3 (no bcrypt for a throttled login)", s.AuthFailures, s.AuthThrottled)
	}
	clock.add(2 * time.Minute) // every wait so far has passed
	if code, _ := login(t, b, attacker, 4, "b", "esp32-b", pw["esp32-b"]); code != 0 {
		t.Fatalf("after the wait: CONNACK %#x", code)
	}
}

// TestPublishLimitSurvivesReconnects: 20 reconnects × 95 QoS 1 publishes
// were all accepted, 234/s against a configured 20/s: the limit was per
// connection. Now the budget is the device's, and so is a reconnect rate.
func TestPublishLimitSurvivesReconnects(t *testing.T) {
	st, pw := testStore(t)
	clock := &fakeClock{t: time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)}
	b := startBroker(t, st, Options{Now: clock.now, Config: Config{PublishRate: 20, PublishBurst: 100, ConnectsPerMinute: 6, ConnectBurst: 10}})
	accepted, refused := 0, 0
	for i := range 20 {
		code, c := login(t, b, "127.0.0.1", 5, "a", "esp32-a", pw["esp32-a"])
		if code != 0 {
			if code != packets.ErrConnectionRateExceeded.Code {
				t.Fatalf("connect %d: CONNACK %#x, want 0 or 0x9F", i, code)
			}
			refused++
			continue
		}
		for j := range 95 {
			c.send(packet(0x32, cat(str("fieldgate/esp32-a/temperature"), []byte{byte(j >> 8), byte(j + 1)}, []byte{0}, []byte("21.5"))))
			first, _ := c.r.ReadByte()
			if first != 0x40 {
				break // a DISCONNECT: over the limit
			}
			n, _ := c.r.ReadByte()
			rest := make([]byte, n)
			_, _ = io.ReadFull(c.r, rest)
			if len(rest) < 3 || rest[2] < 0x80 { // PUBACK: 2-byte id, then reason (absent means success)
				accepted++
			}
		}
		_ = c.Close()
	}
	if accepted != 100 {
		t.Errorf("%d publishes accepted over 20 reconnects with the clock stopped, want the burst of 100", accepted)
	}
	if refused != 10 {
		t.Errorf("%d of 20 reconnects refused, want 10 past the burst", refused)
	}
	if s := b.Stats(); s.ConnectLimited != 10 || s.RateLimited == 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestConnectionsLeaveNothingBehind: every client id ever used was kept
// (60k ids, +41 MB). Now a connection's state goes with it.
func TestConnectionsLeaveNothingBehind(t *testing.T) {
	st, pw := testStore(t)
	b := startBroker(t, st, Options{Config: Config{ConnectBurst: 1 << 20}})
	for i := range 500 {
		code, c := login(t, b, "127.0.0.1", byte(4+i%2), fmt.Sprint("id-", i), "esp32-a", pw["esp32-a"])
		if code != 0 {
			t.Fatalf("connect %d: CONNACK %#x", i, code)
		}
		c.send([]byte{0xE0, 0x00}) // DISCONNECT
		if !c.closedWithin(5 * time.Second) {
			t.Fatal("not closed after DISCONNECT")
		}
	}
	waitFor(t, func() bool { return conns(b) == 0 && b.server.Clients.Len() <= 1 }) // the inline client
}

// conns returns how many connections the hook knows.
func conns(b *Broker) int {
	b.hook.mu.Lock()
	defer b.hook.mu.Unlock()
	return len(b.hook.ids)
}

// sessions reports how many connections the hook knows and how many
// sessions of device it counts, read together.
func sessions(b *Broker, device string) (conns, live int) {
	b.hook.mu.Lock()
	defer b.hook.mu.Unlock()
	b.activity.mu.Lock()
	defer b.activity.mu.Unlock()
	if d := b.activity.devs[device]; d != nil {
		live = d.sessions
	}
	return len(b.hook.ids), live
}

// waitSessions waits until the hook knows conns connections and counts
// live sessions of device: a CONNACK reaches the client before mochi runs
// OnSessionEstablished, so a login's return proves neither.
func waitSessions(t *testing.T, b *Broker, device string, conns, live int) {
	t.Helper()
	waitFor(t, func() bool {
		c, l := sessions(b, device)
		return c == conns && l == live
	})
}

// TestOnlineWhileAnySessionLives: a device with two connections showed
// offline as soon as either closed, and a reconnect taking over its own
// session showed offline while it published.
func TestOnlineWhileAnySessionLives(t *testing.T) {
	st, pw := testStore(t)
	b := startBroker(t, st, Options{})
	online := func() bool {
		d, err := st.Device("esp32-a")
		if err != nil {
			t.Fatal(err)
		}
		return b.LiveDevice(d).Online
	}
	_, first := login(t, b, "127.0.0.1", 4, "node", "esp32-a", pw["esp32-a"])
	_, second := login(t, b, "127.0.0.1", 5, "other", "esp32-a", pw["esp32-a"])
	waitSessions(t, b, "esp32-a", 2, 2)
	_ = second.Close()
	waitSessions(t, b, "esp32-a", 1, 1)
	if !online() {
		t.Error("offline after one of two connections closed")
	}
	// A Wi-Fi drop: the node reconnects before the broker noticed the old
	// connection died; the new session takes the old one over.
	_, again := login(t, b, "127.0.0.1", 4, "node", "esp32-a", pw["esp32-a"])
	if !first.closedWithin(5 * time.Second) {
		t.Fatal("the taken-over connection was not closed")
	}
	waitSessions(t, b, "esp32-a", 1, 1)
	if !online() {
		t.Error("offline after its reconnect took its session over")
	}
	again.send([]byte{0xE0, 0x00})
	waitFor(t, func() bool { return !online() })
}

// TestSleepyNodeIsJudgedByItsReadings: a deep-sleep node connects,
// publishes temperature and humidity and disconnects every five minutes.
// Its reporting interval is learned from the gaps between its reports
// (the two messages of one report count once) and it stays offline by
// session — which the API no longer reads as trouble.
func TestSleepyNodeIsJudgedByItsReadings(t *testing.T) {
	st, pw := testStore(t)
	clock := &fakeClock{t: time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)}
	b := startBroker(t, st, Options{Now: clock.now})
	for i := range 4 {
		c, err := v3(t, b, "esp32-a", pw["esp32-a"], "sleepy")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range [][2]string{{"temperature", "21.5"}, {"humidity", "40"}} {
			if tok := c.Publish("fieldgate/esp32-a/"+m[0], 1, false, m[1]); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("report %d: %v", i, tok.Error())
			}
		}
		c.Disconnect(0)
		waitSessions(t, b, "esp32-a", 0, 0)
		if i < 3 {
			clock.add(5 * time.Minute)
		}
	}
	d, _ := st.Device("esp32-a")
	d = b.LiveDevice(d)
	if d.ReportInterval != 5*time.Minute || !d.LastReading.Equal(clock.now()) || d.Online {
		t.Errorf("interval %s, last reading %s (want 5m0s, %s), online %v", d.ReportInterval, d.LastReading, clock.now(), d.Online)
	}
	waitFor(t, func() bool { // and it reaches the store with the activity flush
		d, _ := st.Device("esp32-a")
		return d.ReportInterval == 5*time.Minute
	})
}

// TestLiveStateOutlastsAFlush: a flush used to clear the online state
// before its write reached the store, so the live view read the older
// stored "offline" in between. And a device removed and added again under
// its id starts clean.
func TestLiveStateOutlastsAFlush(t *testing.T) {
	st, pw := testStore(t)
	b := startBroker(t, st, Options{FlushInterval: time.Hour}) // flushed by hand below
	_, c := login(t, b, "127.0.0.1", 4, "node", "esp32-a", pw["esp32-a"])
	waitSessions(t, b, "esp32-a", 1, 1)
	gate := &gatedUpdater{st: st, entered: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- b.activity.flush(gate) }()
	<-gate.entered // the flush took the activity and has not written it yet
	d, _ := st.Device("esp32-a")
	if !b.LiveDevice(d).Online {
		t.Error("offline while a flush was being written")
	}
	close(gate.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	waitSessions(t, b, "esp32-a", 0, 0)

	b.Removed("esp32-a")
	if _, err := st.PutDevice(store.Device{ID: "esp32-a", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	d, _ = st.Device("esp32-a")
	if d = b.LiveDevice(d); !d.LastSeen.IsZero() || d.Online {
		t.Errorf("a device added again shows its predecessor's activity: %+v", d)
	}
}

// gatedUpdater holds UpdateDevices until released.
type gatedUpdater struct {
	st               DeviceUpdater
	entered, release chan struct{}
}

func (g *gatedUpdater) UpdateDevices(fns map[string]func(*store.Device)) error {
	close(g.entered)
	<-g.release
	return g.st.UpdateDevices(fns)
}
