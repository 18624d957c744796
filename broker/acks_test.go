package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"fieldgate/store"
)

// gatedStore holds back the news of every commit until its gate opens,
// then delivers it in reverse order of the calls — the worst order for a
// connection's PUBACKs — while the readings are really stored at once.
type gatedStore struct {
	*store.Store
	calls atomic.Int32
	gate  chan struct{}

	mu       sync.Mutex
	released bool // the gate opened and what it held was delivered
	dones    []func()
	flushes  []func()
}

// newGatedStore holds the dones and flushes of commits until the gate is
// closed; then it calls the dones held, newest first, and the flushes.
func newGatedStore(st *store.Store) *gatedStore {
	g := &gatedStore{Store: st, gate: make(chan struct{})}
	go func() {
		<-g.gate
		g.mu.Lock()
		defer g.mu.Unlock()
		for i := len(g.dones) - 1; i >= 0; i-- {
			g.dones[i]()
		}
		for _, f := range g.flushes {
			f()
		}
		g.dones, g.flushes, g.released = nil, nil, true
	}()
	return g
}

func (g *gatedStore) AppendThen(ctx context.Context, rs []store.Reading, lead store.Lead, done func(error), flush func()) error {
	g.calls.Add(1)
	return g.Store.AppendThen(ctx, rs, lead, func(err error) {
		g.hold(&g.dones, func() { done(err) })
	}, func() {
		g.hold(&g.flushes, flush)
	})
}

// hold calls f at once if the gate's news was delivered, else adds it to
// held. Deciding on released, not on the gate, keeps the store's promise
// that a commit's flush comes after its done: a done held when the gate
// opens is delivered before any flush that comes later.
func (g *gatedStore) hold(held *[]func(), f func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.released {
		f()
		return
	}
	*held = append(*held, f)
}

// qos1 is a QoS 1 PUBLISH.
func qos1(topic string, id uint16, payload string) []byte {
	return packet(0x32, cat(str(topic), binary.BigEndian.AppendUint16(nil, id), []byte(payload)))
}

// readingsBurst is n QoS 1 publishes of esp32-a's temperature, packet ids
// and values 1 to n, to be sent in one write.
func readingsBurst(n int) []byte {
	var b []byte
	for i := 1; i <= n; i++ {
		b = append(b, qos1("fieldgate/esp32-a/temperature", uint16(i), fmt.Sprint(i))...)
	}
	return b
}

// pipe logs esp32-a in over MQTT 3.1.1 as a raw client.
func pipe(t *testing.T, b *Broker, pw map[string]string) *rawClient {
	t.Helper()
	rc, c := login(t, b, "127.0.0.1", 4, "pipe", "esp32-a", pw["esp32-a"])
	if rc != 0 {
		t.Fatalf("CONNACK %#x", rc)
	}
	return c
}

// watch subscribes the admin to everything of esp32-a at QoS 1 and hands
// each message to got.
func watch(t *testing.T, b *Broker, pw map[string]string, got func(paho3.Message)) {
	t.Helper()
	sub, err := v3(t, b, "ops", pw["ops"], "watcher")
	if err != nil {
		t.Fatal(err)
	}
	if tok := sub.Subscribe("fieldgate/esp32-a/#", 1, func(_ paho3.Client, m paho3.Message) { got(m) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
}

// connOf waits until device is connected and returns its mochi client
// and identity.
func connOf(t *testing.T, b *Broker, device string) (*mqtt.Client, *identity) {
	t.Helper()
	var cl *mqtt.Client
	var id *identity
	waitFor(t, func() bool {
		b.hook.mu.Lock()
		defer b.hook.mu.Unlock()
		for k, v := range b.hook.ids {
			if v.device == device {
				cl, id = k, v
			}
		}
		return cl != nil
	})
	return cl, id
}

// pubacks reads n PUBACKs and returns their packet ids in order; after
// each it calls check with the id.
func (c *rawClient) pubacks(n int, check func(id uint16)) []uint16 {
	c.t.Helper()
	var ids []uint16
	for range n {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, 4)
		if _, err := io.ReadFull(c.r, b); err != nil || b[0] != 0x40 || b[1] != 2 {
			c.t.Fatalf("after PUBACKs %v: read %x, %v; want a PUBACK", ids, b, err)
		}
		id := binary.BigEndian.Uint16(b[2:])
		ids = append(ids, id)
		check(id)
	}
	return ids
}

// TestPipelinedPublishesAreAckedInOrderOnceStored: a node that sends many
// QoS 1 publishes without waiting has them all read and queued for the
// commit while none is acknowledged yet; each PUBACK then comes only once
// its reading is stored, in the order the publishes were sent, whatever
// the order the commits report in; subscribers get every one.
func TestPipelinedPublishesAreAckedInOrderOnceStored(t *testing.T) {
	st, pw := testStore(t)
	g := newGatedStore(st)
	b := startBroker(t, g, Options{})
	got := make(chan string, 64)
	watch(t, b, pw, func(m paho3.Message) { got <- string(m.Payload()) })
	c := pipe(t, b, pw)
	const n = 20
	c.send(readingsBurst(n))
	waitFor(t, func() bool { return g.calls.Load() == n }) // all read while none was acknowledged
	close(g.gate)
	ids := c.pubacks(n, func(id uint16) {
		rs, err := st.Readings(store.Query{Source: "esp32-a", Quantity: "temperature"})
		if err != nil || len(rs) < int(id) {
			t.Errorf("PUBACK %d with %d readings stored (%v)", id, len(rs), err)
		}
	})
	inOrder(t, ids)
	for range n {
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("a stored publish was not forwarded to the subscriber")
		}
	}
	if s := b.Stats(); s.Readings != n || s.StoreFailures != 0 {
		t.Errorf("stats %+v, want %d readings stored", s, n)
	}
}

// TestInFlightPublishesAreBounded: beyond the receive maximum a
// connection's further publishes wait unread until PUBACKs went out.
func TestInFlightPublishesAreBounded(t *testing.T) {
	st, pw := testStore(t)
	g := newGatedStore(st)
	b := startBroker(t, g, Options{Config: Config{ReceiveMaximum: 4}})
	c := pipe(t, b, pw)
	c.send(readingsBurst(6))
	waitFor(t, func() bool { return g.calls.Load() == 4 })
	time.Sleep(100 * time.Millisecond) // the fifth stays unread however long it waits
	if n := g.calls.Load(); n != 4 {
		t.Fatalf("%d publishes in flight with a receive maximum of 4", n)
	}
	close(g.gate)
	inOrder(t, c.pubacks(6, func(uint16) {}))
}

// TestOwnAcksWaitForQueuedPubacks: a QoS 1 publish that mochi acknowledges
// itself (here one on a topic that is not a reading) waits until the
// PUBACKs of the readings sent before it went out.
func TestOwnAcksWaitForQueuedPubacks(t *testing.T) {
	st, pw := testStore(t)
	g := newGatedStore(st)
	b := startBroker(t, g, Options{})
	c := pipe(t, b, pw)
	c.send(append(readingsBurst(3), qos1("fieldgate/esp32-a/notes/free-text", 4, "hello")...))
	waitFor(t, func() bool { return b.Stats().Unmatched == 1 })
	close(g.gate)
	inOrder(t, c.pubacks(4, func(uint16) {}))
}

// inOrder checks that ids are 1, 2, 3 ...
func inOrder(t *testing.T, ids []uint16) {
	t.Helper()
	for i, id := range ids {
		if int(id) != i+1 {
			t.Fatalf("PUBACKs in the order %v", ids)
		}
	}
}

// TestFailedCommitOfPipelinedPublishesAcksNone: when the commits of a
// burst fail, not one PUBACK goes out, the connection is closed, and each
// failure is counted.
func TestFailedCommitOfPipelinedPublishesAcksNone(t *testing.T) {
	st, pw := testStore(t)
	b := startBroker(t, failingStore{st}, Options{})
	c := pipe(t, b, pw)
	c.send(readingsBurst(5))
	if !closedSilently(t, c) {
		t.Fatal("the connection stayed open after its commits failed")
	}
	waitFor(t, func() bool { return b.Stats().StoreFailures >= 1 })
	if s := b.Stats(); s.Readings != 0 {
		t.Errorf("%d readings counted stored although every commit failed", s.Readings)
	}
}

// TestRetainedReadingIsKeptWithoutSubscribers: the forward after a PUBACK
// is skipped while nobody subscribes, but never for a retained publish:
// a technician subscribing later still gets the last value.
func TestRetainedReadingIsKeptWithoutSubscribers(t *testing.T) {
	st, pw := testStore(t)
	b := startBroker(t, st, Options{})
	dev, err := v3(t, b, "esp32-a", pw["esp32-a"], "a")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		topic  string
		retain bool
	}{{"fieldgate/esp32-a/temperature", true}, {"fieldgate/esp32-a/humidity", false}} {
		if tok := dev.Publish(p.topic, 1, p.retain, "21.5"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", p.topic, tok.Error())
		}
	}
	got := make(chan string, 4)
	watch(t, b, pw, func(m paho3.Message) { got <- m.Topic() })
	select {
	case topic := <-got:
		if topic != "fieldgate/esp32-a/temperature" {
			t.Errorf("retained %s, want only the retained temperature", topic)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the retained reading was not kept")
	}
	if s := b.Stats(); s.Readings != 2 {
		t.Errorf("stats %+v, want 2 readings stored", s)
	}
}

// TestAckQueueWritesEveryCompletionInOrder drives an ack queue alone:
// bursts whose commits complete in random order on goroutines of their
// own, some while the writer goroutine lingers and some after it ended;
// a completing goroutine finds every other item's socket full and must
// hand it over. Every item is written exactly once, in arrival order.
func TestAckQueueWritesEveryCompletionInOrder(t *testing.T) {
	var mu sync.Mutex
	var got []int
	written := make(chan struct{}, 64)
	q := newAckQueue(func(as []*pendingAck, block bool) int {
		k := 0
		for _, a := range as {
			if !block && a.n%2 == 0 {
				break // the socket would block: the writer goroutine's
			}
			mu.Lock()
			got = append(got, a.n)
			mu.Unlock()
			written <- struct{}{}
			k++
		}
		return k
	})
	n := 0
	for round := range 40 {
		burst := make([]*pendingAck, 1+rand.IntN(8))
		for i := range burst {
			n++
			burst[i] = newPendingAck(packets.Packet{}, n, nil, time.Time{})
			q.push(burst[i])
		}
		q.submitted()
		for _, i := range rand.Perm(len(burst)) {
			go func() {
				burst[i].complete(nil)
				q.flush()
			}()
		}
		for range burst {
			select {
			case <-written:
			case <-time.After(10 * time.Second):
				t.Fatalf("round %d: an item completed but was never written", round)
			}
		}
		if round%8 == 7 {
			time.Sleep(2 * ackLinger) // the writer ends; the next burst starts another
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("written in the order %v, want 1 to %d", got, n)
		}
	}
	if len(got) != n {
		t.Fatalf("%d written, want %d", len(got), n)
	}
}

// TestTryWriteNeverWaitsAndKeepsPacketsWhole fills a real socket whose
// peer reads nothing: tryWrite takes PUBACKs while the buffers do, then
// declines at once instead of waiting; a packet written after them the
// ordinary way waits its turn. Once the peer reads, it finds exactly the
// PUBACKs tryWrite took, whole and in order (a tail the socket did not
// take at first included), then the other packet.
func TestTryWriteNeverWaitsAndKeepsPacketsWhole(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = peer.Close() }()
	_ = peer.(*net.TCPConn).SetReadBuffer(2048)
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	_ = sc.(*net.TCPConn).SetWriteBuffer(2048)
	gc := newGuardConn(sc, newGuard(Limits{}, func(string, error, ...any) {}), "127.0.0.1")
	defer func() { _ = gc.Close() }()

	var took []uint16
	for id, declined := uint16(1), 0; declined < 3; id++ {
		if id == 0 {
			t.Fatal("the socket took 65,535 PUBACKs nobody read")
		}
		if gc.tryWrite([]byte{pPuback << 4, 2, byte(id >> 8), byte(id)}) {
			took = append(took, id)
		} else {
			declined++
		}
	}
	wrote := make(chan error, 1)
	go func() { _, err := gc.Write([]byte{0xd0, 0}); wrote <- err }() // a PINGRESP, mochi's way

	r := bufio.NewReader(peer)
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	for _, id := range took {
		b := make([]byte, 4)
		if _, err := io.ReadFull(r, b); err != nil || b[0] != 0x40 || b[1] != 2 || binary.BigEndian.Uint16(b[2:]) != id {
			t.Fatalf("read %x, %v; want the PUBACK of %d (tryWrite took %d)", b, err, id, len(took))
		}
	}
	b := make([]byte, 2)
	if _, err := io.ReadFull(r, b); err != nil || b[0] != 0xd0 || b[1] != 0 {
		t.Fatalf("read %x, %v after the PUBACKs; want the PINGRESP", b, err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}

// TestAPeerThatReadsNothingHoldsUpNoOtherPuback: while one node's socket
// takes nothing (its write lock held, as by a write waiting on a full
// socket buffer), the goroutine that completes its commits leaves its
// PUBACKs to its writer goroutine and goes on: another node's publish is
// acknowledged meanwhile. Once the socket takes bytes again, the first
// node gets every PUBACK, in order, and every reading was counted once.
func TestAPeerThatReadsNothingHoldsUpNoOtherPuback(t *testing.T) {
	st, pw := testStore(t)
	g := newGatedStore(st)
	b := startBroker(t, g, Options{})
	c := pipe(t, b, pw)
	cl, _ := connOf(t, b, "esp32-a")
	gc := cl.Net.Conn.(*guardConn)
	gc.wmu.Lock()
	const n = 5
	c.send(readingsBurst(n))
	waitFor(t, func() bool { return g.calls.Load() == n })
	close(g.gate) // the commits complete on the gate's goroutine, which must not wait for esp32-a

	other, err := v3(t, b, "esp32-b", pw["esp32-b"], "other")
	if err != nil {
		t.Fatal(err)
	}
	if tok := other.Publish("fieldgate/esp32-b/temperature", 1, false, "21.5"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("another node's publish was not acknowledged while esp32-a's socket took nothing: %v", tok.Error())
	}
	gc.wmu.Unlock()
	inOrder(t, c.pubacks(n, func(uint16) {}))
	if s := b.Stats(); s.Readings != n+1 {
		t.Errorf("%d readings counted, want %d: each once, however its PUBACK went out", s.Readings, n+1)
	}
}

// TestAFlushHandsItsCommitsItemsOverTogether: completing items only marks
// them; the flush that follows a commit hands every item it made ready
// to finish in one call, oldest first, so that their PUBACKs can go out
// in one write.
func TestAFlushHandsItsCommitsItemsOverTogether(t *testing.T) {
	var calls [][]int
	q := newAckQueue(func(as []*pendingAck, _ bool) int {
		var ns []int
		for _, a := range as {
			ns = append(ns, a.n)
		}
		calls = append(calls, ns)
		return len(as)
	})
	const n = 10
	items := make([]*pendingAck, n)
	for i := range items {
		items[i] = newPendingAck(packets.Packet{}, i+1, nil, time.Time{})
		q.push(items[i])
	}
	q.submitted()
	for _, i := range rand.Perm(n) {
		items[i].complete(nil)
	}
	if len(calls) != 0 {
		t.Fatalf("finish called with %v before the flush", calls)
	}
	q.flush()
	if len(calls) != 1 || len(calls[0]) != n {
		t.Fatalf("finish called with %v, want one call with items 1 to %d", calls, n)
	}
	for i, v := range calls[0] {
		if v != i+1 {
			t.Fatalf("finish called with %v, want items 1 to %d in order", calls[0], n)
		}
	}
	if !q.waitFor(0, time.Second) {
		t.Error("items left in the queue once finish took them all")
	}
}

// TestFinishWritesTheRunOfPubacksInOneWrite: the hook's finish, given
// the done publishes of one connection, writes all their PUBACKs in one
// write that cannot block; while the socket is busy it writes none, and
// whatever way they go out, each reading is counted once.
func TestFinishWritesTheRunOfPubacksInOneWrite(t *testing.T) {
	st, pw := testStore(t)
	b := startBroker(t, st, Options{})
	c := pipe(t, b, pw)
	cl, id := connOf(t, b, "esp32-a")
	const n = 12
	as := make([]*pendingAck, n)
	for i := range as {
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: "fieldgate/esp32-a/temperature", PacketID: uint16(100 + i)}
		as[i] = newPendingAck(pk, 1, nil, time.Now())
		as[i].done = true
	}
	gc := cl.Net.Conn.(*guardConn)
	gc.wmu.Lock() // a write in progress: nothing may wait for it
	if got := b.hook.finish(cl, id, as, false); got != 0 {
		t.Fatalf("finish wrote %d while the socket was busy, want 0", got)
	}
	gc.wmu.Unlock()
	if got := b.hook.finish(cl, id, as, false); got != n {
		t.Fatalf("finish wrote %d of %d done PUBACKs in its one write", got, n)
	}
	ids := c.pubacks(n, func(uint16) {})
	for i, v := range ids {
		if v != uint16(100+i) {
			t.Fatalf("PUBACKs %v, want 100 to %d in order", ids, 100+n-1)
		}
	}
	if s := b.Stats(); s.Readings != n {
		t.Errorf("%d readings counted, want %d: each once, though the first try wrote nothing", s.Readings, n)
	}
}
