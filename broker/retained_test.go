package broker

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	paho3 "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"
)

// willConnect encodes a CONNECT of device with a will on topic.
func willConnect(t *testing.T, v byte, clientID, user, pass, topic string, payload []byte, retain bool, delay, session uint32) []byte {
	t.Helper()
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: v, Connect: packets.ConnectParams{
		ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 30, ClientIdentifier: clientID,
		UsernameFlag: true, Username: []byte(user), PasswordFlag: true, Password: []byte(pass),
		WillFlag: true, WillTopic: topic, WillPayload: payload, WillQos: 0, WillRetain: retain,
	}}
	if v == 5 {
		pk.Connect.WillProperties.WillDelayInterval = delay
		pk.Properties.SessionExpiryInterval, pk.Properties.SessionExpiryIntervalFlag = session, session > 0
	}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// dropWith connects with a will and drops the connection without a
// DISCONNECT, so that the will goes out; it returns the CONNACK's reason.
func dropWith(t *testing.T, b *Broker, connect []byte) byte {
	t.Helper()
	c := dial(t, b.Addr("tcp"))
	c.send(connect)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	head := make([]byte, 4)
	if _, err := c.r.Read(head); err != nil || head[0] != 0x20 {
		t.Fatalf("CONNACK: %x %v", head, err)
	}
	_ = c.Close()
	return head[3]
}

// publishRetained publishes payload retained at QoS 1 on n topics, the
// format's %d numbered from 0, each acknowledged before the next.
func publishRetained(t *testing.T, c paho3.Client, format, payload string, n int) {
	t.Helper()
	for i := range n {
		if tok := c.Publish(fmt.Sprintf(format, i), 1, true, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
}

// retainedOn counts the retained messages mochi holds under prefix.
func retainedOn(b *Broker, prefix string) int {
	n := 0
	for topic := range b.server.Topics.Retained.GetAll() {
		if strings.HasPrefix(topic, prefix) {
			n++
		}
	}
	return n
}

// TestRetainedWillsKeepTheRules: a retained will used to skip max_retained
// (a cap of 5 held 13). Wills now count, within the device's share.
func TestRetainedWillsKeepTheRules(t *testing.T) {
	st, pw := testStore(t)
	b := startBroker(t, st, Options{Config: Config{MaxRetained: 64, ConnectBurst: 100}})
	for i := range 12 {
		dropWith(t, b, willConnect(t, 4, "w"+strconv.Itoa(i), "esp32-a", pw["esp32-a"], "esp32-a/status/"+strconv.Itoa(i), []byte("offline"), true, 0, 0))
	}
	waitFor(t, func() bool { return b.Stats().RetainDropped >= 8 })
	if n := retainedOn(b, "esp32-a/"); n != 4 {
		t.Errorf("%d retained wills of one device, want its share of 4", n)
	}
	if s := b.Stats(); s.Retained != 4 {
		t.Errorf("stats: %d retained", s.Retained)
	}
}

// TestDelayedWillsAreBounded: an MQTT 5 will delay of 0xFFFFFFFF without a
// session expiry parked the will for good (1,500 of them: 31 MiB never
// freed). The delay cannot outlast the session, and past a device's share
// of waiting wills one is sent at once.
func TestDelayedWillsAreBounded(t *testing.T) {
	st, pw := testStore(t)
	b := startBroker(t, st, Options{Config: Config{ConnectBurst: 100}})
	ops, err := v3(t, b, "ops", pw["ops"], "ops")
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan struct{}, 100)
	if tok := ops.Subscribe("esp32-a/status", 0, func(paho3.Client, paho3.Message) { sent <- struct{}{} }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	received := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-sent:
			case <-time.After(10 * time.Second):
				t.Fatal("a will that was to go at once did not come")
			}
		}
	}
	dropWith(t, b, willConnect(t, 5, "forever", "esp32-a", pw["esp32-a"], "esp32-a/status", []byte("offline"), false, 0xFFFFFFFF, 0))
	received(1) // no session to outlast: sent at once
	if n := b.Stats().DelayedWills; n != 0 {
		t.Fatalf("%d wills parked with no session to outlast", n)
	}
	for i := range 20 {
		dropWith(t, b, willConnect(t, 5, "s"+strconv.Itoa(i), "esp32-a", pw["esp32-a"], "esp32-a/status", []byte("offline"), false, 0xFFFFFFFF, 3600))
	}
	received(20 - maxDelayedWillsPerDevice) // past the device's share: sent at once
	if n := b.Stats().DelayedWills; n != maxDelayedWillsPerDevice {
		t.Errorf("%d wills parked by one device, want %d", n, maxDelayedWillsPerDevice)
	}
	// A will over the size limit is refused at CONNECT.
	if code := dropWith(t, b, willConnect(t, 5, "big", "esp32-a", pw["esp32-a"], "esp32-a/status", bytes.Repeat([]byte("x"), 2048), false, 0, 0)); code != packets.ErrPacketTooLarge.Code {
		t.Errorf("a 2 KiB will: CONNACK reason %#x, want %#x", code, packets.ErrPacketTooLarge.Code)
	}
}

// TestRetainedShares: one device cannot spend the whole retained budget
// (its share is a sixteenth); an admin's configuration for a device fits
// when devices took all they may; a removed device's slots come back.
func TestRetainedShares(t *testing.T) {
	st, pw := testStore(t)
	b := startBroker(t, st, Options{Config: Config{MaxRetained: 64}})
	a, err := v3(t, b, "esp32-a", pw["esp32-a"], "a")
	if err != nil {
		t.Fatal(err)
	}
	publishRetained(t, a, "esp32-a/config/%d", "x", 10)
	if n := retainedOn(b, "esp32-a/"); n != 4 {
		t.Errorf("one device holds %d retained messages, want its share of 4", n)
	}
	ops, err := v3(t, b, "ops", pw["ops"], "ops")
	if err != nil {
		t.Fatal(err)
	}
	if tok := ops.Publish("fieldgate/esp32-b/cmd/interval", 1, true, "60"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if retainedOn(b, "fieldgate/esp32-b/cmd/") != 1 {
		t.Error("the admin's retained configuration for another device was dropped")
	}
	b.Removed("esp32-a")
	if n := retainedOn(b, "esp32-a/"); n != 0 || b.Stats().Retained != 1 {
		t.Errorf("after the device's removal: %d of its retained messages, %d in all", n, b.Stats().Retained)
	}
}

// TestResponseTopicStaysWithTheDevice: a device's MQTT 5 request may name
// only its own command topics as the reply address, not another device's
// (which a request/response consumer would then command on its behalf).
func TestResponseTopicStaysWithTheDevice(t *testing.T) {
	st, pw := testStore(t)
	b := startBroker(t, st, Options{})
	c, _, err := v5(t, b, "esp32-a", pw["esp32-a"], "a")
	if err != nil {
		t.Fatal(err)
	}
	for topic, want := range map[string]byte{
		"fieldgate/esp32-b/cmd/reboot": packets.ErrNotAuthorized.Code,
		"fieldgate/esp32-a/cmd/reply":  0,
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, _ := c.Publish(ctx, &paho.Publish{Topic: "fieldgate/esp32-a/temperature", QoS: 1, Payload: []byte("21"),
			Properties: &paho.PublishProperties{ResponseTopic: topic}})
		cancel()
		if r == nil || r.ReasonCode != want {
			t.Errorf("response topic %s: %+v, want reason %#x", topic, r, want)
		}
	}
}

// TestRetainedReadingsKeepTheShare: a QoS 1 reading is retained once it
// is stored, through the gateway's own client; it used to skip the
// device's share (ten topics held where four may be).
func TestRetainedReadingsKeepTheShare(t *testing.T) {
	st, pw := testStore(t)
	b := startBroker(t, st, Options{Config: Config{MaxRetained: 64}})
	a, err := v3(t, b, "esp32-a", pw["esp32-a"], "a")
	if err != nil {
		t.Fatal(err)
	}
	publishRetained(t, a, "esp32-a/sensor/probe%d/state", "21.5", 10)
	if s := b.Stats(); s.Readings != 10 || s.Retained != 4 || s.RetainDropped != 6 {
		t.Errorf("stats: %d readings, %d retained, %d retain flags dropped; want 10, 4 and 6", s.Readings, s.Retained, s.RetainDropped)
	}
	waitFor(t, func() bool { return retainedOn(b, "esp32-a/") >= 4 }) // each is retained after its PUBACK
	if n := retainedOn(b, "esp32-a/"); n != 4 {
		t.Errorf("one device holds %d retained readings, want its share of 4", n)
	}
}

// TestRetainedSlotsAreTakenWhenDecided: the book counts a slot when the
// broker decides to keep a message, before mochi reports it kept, so that
// a device's connections deciding at once cannot all fit in its last slot
// (this is what let twelve wills of one device be kept where four may).
func TestRetainedSlotsAreTakenWhenDecided(t *testing.T) {
	r := newRetainedBook(64)
	var kept []string
	for i := range 10 {
		topic := "esp32-a/status/" + strconv.Itoa(i)
		if r.take("esp32-a", false, topic) {
			kept = append(kept, topic)
		}
	}
	if len(kept) != 4 || r.count() != 4 {
		t.Fatalf("took %d slots (the book counts %d) before any was confirmed, want the share of 4", len(kept), r.count())
	}
	if !r.take("esp32-a", false, kept[0]) {
		t.Error("a topic the device holds was refused: replacing takes no new slot")
	}
	for _, topic := range kept { // mochi reports them kept: no second count
		r.set(topic, "esp32-a")
	}
	r.clear(kept[1])
	if !r.take("esp32-a", false, "esp32-a/status/new") || r.count() != 4 {
		t.Errorf("a cleared slot did not come back: %d held", r.count())
	}
	if !r.take("ops", true, "fieldgate/esp32-a/cmd/interval") {
		t.Error("an admin's command topic was refused")
	}
}
