package broker

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	paho3 "github.com/eclipse/paho.mqtt.golang"
)

// persistent3 connects esp32-a with MQTT 3.1.1 and a persistent session
// (clean session off); messages it receives go to got.
func persistent3(t *testing.T, b *Broker, pass string, got chan<- string) paho3.Client {
	t.Helper()
	o := paho3.NewClientOptions().AddBroker("tcp://" + b.Addr("tcp")).SetClientID("node").SetCleanSession(false).
		SetUsername("esp32-a").SetPassword(pass).SetAutoReconnect(false).SetProtocolVersion(4).SetConnectTimeout(5 * time.Second).
		SetDefaultPublishHandler(func(_ paho3.Client, m paho3.Message) { got <- m.Topic() + "=" + string(m.Payload()) })
	c := paho3.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	return c
}

// persistent5 connects esp32-a with MQTT 5, a session that outlives the
// connection by an hour; messages it receives go to got.
func persistent5(t *testing.T, b *Broker, pass string, got chan<- string) *paho.Client {
	t.Helper()
	conn, err := net.Dial("tcp", b.Addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{ClientID: "node5", Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(p paho.PublishReceived) (bool, error) {
			got <- p.Packet.Topic + "=" + string(p.Packet.Payload)
			return true, nil
		}}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	expiry := uint32(3600)
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: "node5", Username: "esp32-a", UsernameFlag: true, Password: []byte(pass), PasswordFlag: true,
		KeepAlive: 30, CleanStart: false, Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry}}); err != nil {
		t.Fatalf("connect: %v", err)
	}
	return c
}

// command publishes a command to esp32-a from the admin device ops.
func command(t *testing.T, b *Broker, pass, payload string) {
	t.Helper()
	ops, err := v3(t, b, "ops", pass, "console")
	if err != nil {
		t.Fatal(err)
	}
	if tok := ops.Publish("fieldgate/esp32-a/cmd/relay", 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish the command: %v", tok.Error())
	}
}

func received(t *testing.T, got <-chan string, want string) {
	t.Helper()
	select {
	case m := <-got:
		if m != want {
			t.Fatalf("received %q, want %q", m, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%q never arrived", want)
	}
}

// TestACommandWaitsForASleepingNode: a node subscribes to its commands
// with a persistent session and goes to sleep; a command published
// meanwhile is queued and delivered when it reconnects, on MQTT 3.1.1 and
// 5. (It was dropped: the ACL found no identity for the absent client.)
func TestACommandWaitsForASleepingNode(t *testing.T) {
	st, pw := testStore(t)
	b := startBroker(t, st, Options{})

	got3 := make(chan string, 4)
	c3 := persistent3(t, b, pw["esp32-a"], got3)
	if tok := c3.Subscribe("fieldgate/esp32-a/cmd/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	c3.Disconnect(100)

	got5 := make(chan string, 4)
	c5 := persistent5(t, b, pw["esp32-a"], got5)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c5.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "fieldgate/esp32-a/cmd/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := c5.Disconnect(&paho.Disconnect{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return b.Stats().Clients == 0 })

	command(t, b, pw["ops"], "on")
	waitFor(t, func() bool { return b.Stats().QueuedOffline == 2 }) // forwarded after the PUBACK

	c3 = persistent3(t, b, pw["esp32-a"], got3)
	defer c3.Disconnect(100)
	received(t, got3, "fieldgate/esp32-a/cmd/relay=on")
	c5 = persistent5(t, b, pw["esp32-a"], got5)
	defer func() { _ = c5.Disconnect(&paho.Disconnect{}) }()
	received(t, got5, "fieldgate/esp32-a/cmd/relay=on")
}

// TestARemovedDeviceGetsNothingQueued: a device removed while its node
// sleeps gets no command queued: its rights are judged by what the store
// says now.
func TestARemovedDeviceGetsNothingQueued(t *testing.T) {
	st, pw := testStore(t)
	b := startBroker(t, st, Options{})
	got := make(chan string, 4)
	c := persistent3(t, b, pw["esp32-a"], got)
	if tok := c.Subscribe("fieldgate/esp32-a/cmd/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	c.Disconnect(100)
	waitFor(t, func() bool { return b.Stats().Clients == 0 })
	if err := st.DeleteDevice("esp32-a"); err != nil {
		t.Fatal(err)
	}
	b.Removed("esp32-a")
	// A live subscriber of the same topic sees the command and then a
	// marker published after it on the same connection: mochi forwards
	// one connection's publishes in order, so by then the command met
	// every subscriber, the sleeping one included.
	live, err := v3(t, b, "ops", pw["ops"], "watcher")
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 2)
	if tok := live.Subscribe("fieldgate/esp32-a/cmd/#", 1, func(_ paho3.Client, m paho3.Message) { seen <- string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	ops, err := v3(t, b, "ops", pw["ops"], "console")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"on", "marker"} {
		if tok := ops.Publish("fieldgate/esp32-a/cmd/relay", 1, false, p); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	received(t, seen, "on")
	received(t, seen, "marker")
	if n := b.Stats().QueuedOffline; n != 0 {
		t.Errorf("%d commands queued for a removed device, want 0", n)
	}
}
