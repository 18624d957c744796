package broker

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"fieldgate/store"

	"github.com/eclipse/paho.golang/paho"
)

// rawPacket decodes the hex the attack was written down in.
func rawPacket(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// closedSilently reports whether the server closed c without writing a byte.
func closedSilently(t *testing.T, c *rawClient) bool {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := c.r.ReadByte()
	if err == nil {
		t.Errorf("read %#x, want the connection closed without a packet", b)
		return false
	}
	return c.closedWithin(time.Second)
}

// TestA311ClientIsNeverSentADisconnect: a 3.1.1 client publishing QoS 1 to
// a foreign topic got `e0 00`, a DISCONNECT 3.1.1 does not have. The
// answer 3.1.1 allows for a publish refused is closing the connection.
func TestA311ClientIsNeverSentADisconnect(t *testing.T) {
	st, pw := testStore(t)
	b := startBroker(t, st, Options{})
	_, c := login(t, b, "127.0.0.1", 4, "a", "esp32-a", pw["esp32-a"])
	// topic "fieldgate/other/temperature", packet id 5, payload "1"
	c.send(append(rawPacket(t, "32 20 00 1b"), append([]byte("fieldgate/other/temperature"), 0x00, 0x05, '1')...))
	if !closedSilently(t, c) {
		t.Error("connection left open after a refused publish")
	}
	// The refusal shows on the device: it used to be invisible there.
	waitFor(t, func() bool {
		d, _ := st.Device("esp32-a")
		d = b.LiveDevice(d)
		return d.Rejected == 1 && d.LastError == "not allowed to publish to fieldgate/other/temperature"
	})
}

// TestImplausibleValuesAreRefused: `humidity 150` from a node was
// acknowledged and shown as the latest value. MQTT values now meet the
// local sensors' physical bounds: refused, counted, the device's last
// error says why, and MQTT 5 gets 0x99.
func TestImplausibleValuesAreRefused(t *testing.T) {
	st, pw := testStore(t)
	b := startBroker(t, st, Options{})
	c5, _, err := v5(t, b, "esp32-a", pw["esp32-a"], "a")
	if err != nil {
		t.Fatal(err)
	}
	for topic, payload := range map[string]string{
		"fieldgate/esp32-a/humidity":          "150",
		"fieldgate/esp32-a/water_temperature": "-127", // a DS18B20 without its bus
		"fieldgate/esp32-a/senml":             `[{"n":"co2","u":"ppm","v":-3}]`,
		"esp32-a/sensor/humidity/state":       "101",
	} {
		if rc, err := publish5(t, c5, topic, payload); err != nil || rc != 0x99 {
			t.Errorf("%s %s: reason %#x, %v; want 0x99", topic, payload, rc, err)
		}
	}
	c3, err := v3(t, b, "esp32-b", pw["esp32-b"], "b")
	if err != nil {
		t.Fatal(err)
	}
	if tok := c3.Publish("fieldgate/esp32-b/humidity", 1, false, "150"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Errorf("3.1.1: a refused payload is still acknowledged (resending cannot fix it): %v", tok.Error())
	}
	if n := b.Stats().Rejected; n != 5 {
		t.Errorf("rejected %d, want 5", n)
	}
	d, _ := st.Device("esp32-b")
	if d = b.LiveDevice(d); d.Rejected != 1 || !strings.Contains(d.LastError, "humidity=150%RH is implausible (plausible 0 to 100)") {
		t.Errorf("esp32-b: rejected %d, last error %q", d.Rejected, d.LastError)
	}
	for _, dev := range []string{"esp32-a", "esp32-b"} {
		for _, q := range []string{"humidity", "water_temperature", "co2"} {
			if rs := readings(t, st, dev, q); len(rs) != 0 {
				t.Errorf("%s %s stored: %v", dev, q, rs)
			}
		}
	}
}

// TestSysPublishIsAnsweredWithAClose: a QoS 1 publish to $SYS/x was
// swallowed — no PUBACK, connection open, the client waiting for ever.
func TestSysPublishIsAnsweredWithAClose(t *testing.T) {
	st, pw := testStore(t)
	b := startBroker(t, st, Options{})
	for _, v := range []byte{4, 5} {
		_, c := login(t, b, "127.0.0.1", v, "a", "ops", pw["ops"]) // even an admin
		pkt := rawPacket(t, "32 0b 00 06 24 53 59 53 2f 78 00 05 31")
		if v == 5 {
			pkt = rawPacket(t, "32 0c 00 06 24 53 59 53 2f 78 00 05 00 31") // with an empty property list
		}
		c.send(pkt)
		if !c.closedWithin(5 * time.Second) {
			t.Errorf("MQTT level %d: a QoS 1 publish to $SYS/x got neither an answer nor a close", v)
		}
	}
}

// TestConnackAdvertisesEveryLimit: the MQTT 5 CONNACK omitted the packet
// size the broker enforces and the keepalive it imposes.
func TestConnackAdvertisesEveryLimit(t *testing.T) {
	st, pw := testStore(t)
	b := startBroker(t, st, Options{Config: Config{Limits: Limits{MaxPacketSize: 16 << 10, MaxKeepalive: 10 * time.Minute}}})
	_, ack, err := v5(t, b, "esp32-a", pw["esp32-a"], "a")
	if err != nil {
		t.Fatal(err)
	}
	p := ack.Properties
	if p == nil || p.MaximumPacketSize == nil || *p.MaximumPacketSize != 16<<10 || p.ReceiveMaximum == nil || *p.ReceiveMaximum != 32 {
		t.Fatalf("CONNACK properties %+v: want Maximum Packet Size 16384 and Receive Maximum 32", p)
	}
	if p.TopicAliasMaximum != nil && *p.TopicAliasMaximum != 0 {
		t.Errorf("Topic Alias Maximum %d, want 0 or absent", *p.TopicAliasMaximum)
	}
	// v5() asks for a keepalive of 30 s, within the bound: none imposed.
	if p.ServerKeepAlive != nil {
		t.Errorf("Server Keep Alive %d for a keepalive within the bound", *p.ServerKeepAlive)
	}
	// A keepalive of 0 (never time out) is replaced, and the CONNACK says so.
	body := cat(str("MQTT"), []byte{5, 0xC2}, []byte{0, 0}, []byte{0}, str("k0"), str("esp32-b"), str(pw["esp32-b"]))
	raw := dial(t, b.Addr("tcp"))
	raw.send(packet(0x10, body))
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 256)
	n, _ := raw.Read(buf)
	// Server Keep Alive is property 0x13 with a 2-byte value: 600 = 0x0258.
	if !strings.Contains(string(buf[:n]), "\x13\x02\x58") {
		t.Errorf("CONNACK % x lacks Server Keep Alive 600 for a keepalive of 0", buf[:n])
	}
}

// TestRefusedQoS0IsNeitherRetainedNorForwarded: an MQTT 5 QoS 0 publish
// with a bad payload, or over the rate limit, got a reason code mochi
// ignores at QoS 0 — and was retained and forwarded to subscribers.
func TestRefusedQoS0IsNeitherRetainedNorForwarded(t *testing.T) {
	st, pw := testStore(t)
	b := startBroker(t, st, Options{Config: Config{PublishRate: 0.001, PublishBurst: 3}})
	got := make(chan string, 10)
	sub, _, err := v5(t, b, "ops", pw["ops"], "ops", func(c *paho.ClientConfig) {
		c.OnPublishReceived = []func(paho.PublishReceived) (bool, error){func(p paho.PublishReceived) (bool, error) {
			got <- string(p.Packet.Payload)
			return true, nil
		}}
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Retain handling 2: no retained messages at subscribe. mochi sends
	// them after the SUBACK, so on a loaded machine they could arrive after
	// the device's live publishes and look like a second forward.
	if _, err := sub.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "fieldgate/esp32-a/#", RetainHandling: 2}}}); err != nil {
		t.Fatal(err)
	}
	dev, _, err := v5(t, b, "esp32-a", pw["esp32-a"], "a")
	if err != nil {
		t.Fatal(err)
	}
	for _, payload := range []string{"not-a-number", "21.5", "22.5", "over-the-limit"} {
		if _, err := dev.Publish(ctx, &paho.Publish{Topic: "fieldgate/esp32-a/temperature", QoS: 0, Retain: true, Payload: []byte(payload)}); err != nil {
			t.Fatal(err)
		}
	}
	var forwarded []string
	for len(forwarded) < 2 {
		select {
		case p := <-got:
			forwarded = append(forwarded, p)
		case <-time.After(5 * time.Second):
			t.Fatalf("forwarded %q, want the two good readings", forwarded)
		}
	}
	if fmt.Sprint(forwarded) != "[21.5 22.5]" {
		t.Errorf("forwarded %q, want only the two good readings", forwarded)
	}
	// A barrier: the admin's own retained publish arrives after anything
	// the device's last publish could have caused.
	if _, err := sub.Publish(ctx, &paho.Publish{Topic: "fieldgate/esp32-a/cmd/x", QoS: 1, Payload: []byte("barrier")}); err != nil {
		t.Fatal(err)
	}
	if p := <-got; p != "barrier" {
		t.Errorf("received %q after the good readings, want nothing but the barrier", p)
	}
	late, _, err := v5(t, b, "ops", pw["ops"], "late", func(c *paho.ClientConfig) {
		c.OnPublishReceived = []func(paho.PublishReceived) (bool, error){func(p paho.PublishReceived) (bool, error) {
			got <- "retained:" + string(p.Packet.Payload)
			return true, nil
		}}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := late.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "fieldgate/esp32-a/temperature"}}}); err != nil {
		t.Fatal(err)
	}
	if p := <-got; p != "retained:22.5" {
		t.Errorf("retained message %q, want the last good reading", p)
	}
}

// TestQuantitiesPerDeviceAreCapped: ten SenML messages created 5,000
// series. Readings of a new quantity past the cap are refused and counted
// with the device's last error; known quantities keep working, also after
// a restart.
func TestQuantitiesPerDeviceAreCapped(t *testing.T) {
	st, pw := testStore(t)
	b := startBroker(t, st, Options{Config: Config{MaxQuantitiesPerDevice: 3}})
	c, _, err := v5(t, b, "esp32-a", pw["esp32-a"], "a")
	if err != nil {
		t.Fatal(err)
	}
	var pack []string
	for i := range 5 {
		pack = append(pack, fmt.Sprintf(`{"n":"q%d","v":%d}`, i, i))
	}
	if rc, err := publish5(t, c, "fieldgate/esp32-a/senml", "["+strings.Join(pack, ",")+"]"); err != nil || rc != 0 {
		t.Fatalf("a pack with known room for three: reason %#x, %v", rc, err)
	}
	if rc, _ := publish5(t, c, "fieldgate/esp32-a/q4", "1"); rc != 0x97 {
		t.Errorf("a fourth quantity alone: reason %#x, want 0x97", rc)
	}
	// Refused quantities between known ones: the known are all kept.
	mixed := `[{"n":"q0","v":40},{"n":"q8","v":8},{"n":"q1","v":41},{"n":"q9","v":9}]`
	if rc, err := publish5(t, c, "fieldgate/esp32-a/senml", mixed); err != nil || rc != 0 {
		t.Fatalf("a pack with two new and two known quantities: reason %#x, %v", rc, err)
	}
	for q, want := range map[string]float64{"q0": 40, "q1": 41} {
		if r, ok, err := st.Latest(store.SeriesKey{Source: "esp32-a", Quantity: q}); err != nil || !ok || r.Value != want {
			t.Errorf("latest %s: %v %v %v, want %v", q, r.Value, ok, err, want)
		}
	}
	var qs []string
	for _, k := range st.Series() {
		if k.Source == "esp32-a" {
			qs = append(qs, k.Quantity)
		}
	}
	if fmt.Sprint(qs) != "[q0 q1 q2]" {
		t.Errorf("series %v, want the first three", qs)
	}
	if n := b.Stats().QuantityCapped; n != 3 {
		t.Errorf("capped %d, want 3", n)
	}
	if d, _ := st.Device("esp32-a"); !strings.Contains(b.LiveDevice(d).LastError, "mqtt.max_quantities_per_device") {
		t.Errorf("last error %q does not name the cap", b.LiveDevice(d).LastError)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := startBroker(t, st, Options{Config: Config{MaxQuantitiesPerDevice: 3}})
	c2, _, err := v5(t, b2, "esp32-a", pw["esp32-a"], "a")
	if err != nil {
		t.Fatal(err)
	}
	if rc, _ := publish5(t, c2, "fieldgate/esp32-a/q1", "7"); rc != 0 {
		t.Errorf("a known quantity after a restart: reason %#x", rc)
	}
	if rc, _ := publish5(t, c2, "fieldgate/esp32-a/q9", "7"); rc != 0x97 {
		t.Errorf("a new quantity after a restart: reason %#x, want 0x97", rc)
	}
}

// TestAnMQTT5ClientIsToldWhyItIsClosed: a packet over the Maximum Packet
// Size, or a topic alias (the CONNACK offers none), closes an MQTT 5
// connection, but first with the DISCONNECT the specification says the
// server should send: 0x95 packet too large, 0x94 topic alias invalid.
// (The socket used to close without a word.)
func TestAnMQTT5ClientIsToldWhyItIsClosed(t *testing.T) {
	st, pw := testStore(t)
	b := startBroker(t, st, Options{})
	topic := str("fieldgate/esp32-a/temperature")
	for _, tc := range []struct {
		name   string
		pkt    []byte
		reason byte
	}{
		{"too large", []byte{0x30, 0xFF, 0xFF, 0x7F}, 0x95}, // a QoS 0 PUBLISH announcing 2 MB
		{"topic alias", packet(0x30, cat(topic, []byte{3, 0x23, 0, 1}, []byte("21"))), 0x94},
	} {
		_, c := login(t, b, "127.0.0.1", 5, "a", "esp32-a", pw["esp32-a"])
		c.send(tc.pkt)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got := make([]byte, 3)
		if _, err := io.ReadFull(c.r, got); err != nil || got[0] != 0xE0 || got[1] != 1 || got[2] != tc.reason {
			t.Errorf("%s: read %x (%v), want DISCONNECT e0 01 %02x", tc.name, got, err, tc.reason)
		}
		if !c.closedWithin(time.Second) {
			t.Errorf("%s: the connection stays open", tc.name)
		}
	}
}

// TestAcksCarryNoUserProperties: an MQTT 5 publish with user properties
// that mochi acknowledges itself (not a reading: a command topic) is
// answered without them; some clients reject a PUBACK that echoes them.
func TestAcksCarryNoUserProperties(t *testing.T) {
	st, pw := testStore(t)
	b := startBroker(t, st, Options{})
	c, _, err := v5(t, b, "ops", pw["ops"], "console")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := c.Publish(ctx, &paho.Publish{Topic: "fieldgate/esp32-a/cmd/relay", QoS: 1, Payload: []byte("on"),
		Properties: &paho.PublishProperties{User: paho.UserProperties{{Key: "trace", Value: "42"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Properties != nil && len(r.Properties.User) > 0 {
		t.Errorf("PUBACK carries user properties %v", r.Properties.User)
	}
}
