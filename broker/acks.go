package broker

import (
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// ackQueue holds one connection's QoS 1 publishes of readings from their
// arrival until their PUBACK is written, so that the connection's read
// goroutine goes on reading while the commit syncs: a node may keep up to
// the receive maximum of readings in flight, and they share syncs.
//
// Items stay in arrival order and are written in it (MQTT-4.6.0-2), each
// once the commit holding its readings synced or failed. The writer is
// whichever goroutine finds the oldest item done and nobody writing: the
// connection's own read goroutine when it led the commit itself (a lone
// client pays no hand-off), else the goroutine that ran the commit, as far
// as the socket takes the PUBACKs at once: a commit answers every
// connection it holds without waking a goroutine per reading, and it marks
// every item it held done before it writes (flush), so that a node with
// many publishes in one sync gets their PUBACKs in one write. What it
// cannot write without blocking (a full socket buffer, a refusal, a
// publish to forward) goes to the queue's writer goroutine, so that no
// peer that stops reading can hold the commit up. That one is started when
// needed and lingers for ackLinger after it wrote, so that a busy node's
// PUBACKs are handed to a parked goroutine rather than to a new one each
// (whose stack must grow again); an idle connection costs no goroutine.
type ackQueue struct {
	// finish writes the PUBACKs (or a refusal) of done items, oldest first,
	// and reports how many it did (at least one if block); unless block,
	// it may decline (0) what it cannot do without blocking, and the items
	// stay.
	finish func(as []*pendingAck, block bool) int
	wake   chan struct{} // hands the writing to the lingering writer
	// flushFunc is q.flush, made once: every AppendThen is given it.
	flushFunc func()
	batch     []*pendingAck // the done items being written: whoever writes owns it

	mu         sync.Mutex
	items      []*pendingAck // arrival order; removed once written
	writing    bool          // a goroutine is writing items
	lingering  bool          // the writer goroutine is parked on wake
	submitting bool          // the read goroutine is in the store's AppendThen
	room       chan struct{} // signalled when an item was written
}

// ackLinger is how long the writer goroutine waits for more to write
// before it ends: long beside a busy node's round trip (milliseconds),
// short beside a sensor's publishing interval (seconds).
const ackLinger = 100 * time.Millisecond

// pendingAck is one QoS 1 publish whose readings are being committed.
// They are recycled (a publish is about 700 bytes, and a busy gateway
// takes tens of thousands a second): get one with newPendingAck; the
// queue releases it once its PUBACK is written.
type pendingAck struct {
	pk      packets.Packet
	n       int       // readings stored once it is done without err
	capErr  error     // readings the quantity cap refused (the rest are stored)
	at      time.Time // when it arrived
	done    bool
	err     error
	counted bool // its readings were counted as stored (finish)

	q        *ackQueue   // set by push
	complete func(error) // the store's done callback: q.complete(self, err), made once
}

var pendingAcks sync.Pool

// newPendingAck returns a cleared pendingAck holding pk.
func newPendingAck(pk packets.Packet, n int, capErr error, at time.Time) *pendingAck {
	a, _ := pendingAcks.Get().(*pendingAck)
	if a == nil {
		a = new(pendingAck)
		a.complete = func(err error) { a.q.complete(a, err) }
	}
	a.pk, a.n, a.capErr, a.at = pk, n, capErr, at
	return a
}

// release returns a to the pool; nothing may hold it any more.
func (a *pendingAck) release() {
	complete := a.complete
	*a = pendingAck{complete: complete}
	pendingAcks.Put(a)
}

func newAckQueue(finish func(as []*pendingAck, block bool) int) *ackQueue {
	q := &ackQueue{finish: finish, wake: make(chan struct{}, 1), room: make(chan struct{}, 1)}
	q.flushFunc = q.flush
	return q
}

// waitFor blocks until at most n items are unwritten, or timeout passes;
// it reports whether they are. Only the read goroutine waits.
func (q *ackQueue) waitFor(n int, timeout time.Duration) bool {
	var timer *time.Timer
	for {
		q.mu.Lock()
		ok := len(q.items) <= n
		q.mu.Unlock()
		if ok {
			return true
		}
		if timer == nil {
			timer = time.NewTimer(timeout)
			defer timer.Stop()
		}
		select {
		case <-q.room:
		case <-timer.C:
			return false
		}
	}
}

// push adds a publish that is about to be committed.
func (q *ackQueue) push(a *pendingAck) {
	a.q = q
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items = append(q.items, a)
	q.submitting = true
}

// submitted says the read goroutine is back from AppendThen; it writes
// what became ready meanwhile itself.
func (q *ackQueue) submitted() {
	q.mu.Lock()
	q.submitting = false
	mine := q.claim()
	q.mu.Unlock()
	if mine {
		q.write(true, false)
	}
}

// complete marks a done: the commit calls it for each item it held, then
// flushes once it marked them all (AppendThen's caller, for a publish the
// store refused, then submits).
func (q *ackQueue) complete(a *pendingAck, err error) {
	q.mu.Lock()
	a.done, a.err = true, err
	q.mu.Unlock()
}

// flush writes what the commit that just completed items made ready; it
// runs on the goroutine that ran the commit and must not block: it writes
// what the socket takes at once and hands the rest to the writer
// goroutine, unless the read goroutine is still submitting and will write
// it.
func (q *ackQueue) flush() {
	q.mu.Lock()
	mine := !q.submitting && q.claim()
	q.mu.Unlock()
	if !mine || q.write(false, false) {
		return
	}
	q.mu.Lock()
	wake := q.lingering
	q.lingering = false
	q.mu.Unlock()
	if wake {
		q.wake <- struct{}{} // never blocks: one hand-off per lingering
	} else {
		go q.writer()
	}
}

// claim takes the writing if the oldest item is done and nobody writes.
// q.mu is held.
func (q *ackQueue) claim() bool {
	if q.writing || len(q.items) == 0 || !q.items[0].done {
		return false
	}
	q.writing = true
	return true
}

// writer writes what was claimed for it, then lingers for more: it ends
// once ackLinger passed without a hand-off.
func (q *ackQueue) writer() {
	t := time.NewTimer(ackLinger)
	defer t.Stop()
	for {
		q.write(true, true)
		select {
		case <-q.wake:
		case <-t.C:
			q.mu.Lock()
			if q.lingering { // nobody handed it anything: done
				q.lingering = false
				q.mu.Unlock()
				return
			}
			q.mu.Unlock()
			<-q.wake // a complete claimed the writing for it just now
		}
		t.Reset(ackLinger)
	}
}

// write writes done items from the oldest until it meets one still
// committing, then gives the writing up and reports true; the writer
// goroutine (linger) parks on wake in the same step, so that no completion
// in between starts a second one. The done items are handed to finish
// together, so that their PUBACKs can go out in one write. Unless block,
// it stops at what finish declines and reports false: the writing is
// still claimed, for the caller to hand over.
func (q *ackQueue) write(block, linger bool) bool {
	for {
		q.mu.Lock()
		n := 0
		for n < len(q.items) && q.items[n].done {
			n++
		}
		if n == 0 {
			q.writing = false
			q.lingering = q.lingering || linger
			q.mu.Unlock()
			return true
		}
		q.batch = append(q.batch[:0], q.items[:n]...)
		q.mu.Unlock()
		k := q.finish(q.batch, block)
		if k == 0 {
			clear(q.batch)
			return false
		}
		q.mu.Lock()
		clear(q.items[:k])
		if len(q.items) == k {
			q.items = q.items[:0] // the next push reuses the array
		} else {
			q.items = q.items[k:]
		}
		q.mu.Unlock()
		for _, a := range q.batch[:k] {
			a.release()
		}
		clear(q.batch)
		select {
		case q.room <- struct{}{}:
		default:
		}
	}
}

// writePuback acknowledges publish id, whose readings are on disk, and
// reports whether it did. The PUBACK goes straight to the socket if it
// takes the four bytes at once (the same bytes mochi writes for a success
// without properties, in either protocol version); else, with block, it
// goes through mochi's writer, which waits for the socket (and closes a
// connection whose peer reads nothing within the write deadline).
func writePuback(server *mqtt.Server, cl *mqtt.Client, id uint16, block bool) bool {
	if tryPubacks(server, cl, appendPuback(nil, id), 1) {
		return true
	}
	if !block {
		return false
	}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: id}
	_ = cl.WritePacket(pk) // a closed connection: the device sends again
	return true
}

// appendPuback appends the PUBACK of publish id: the same bytes mochi
// writes for a success without properties, in either protocol version.
func appendPuback(p []byte, id uint16) []byte {
	return append(p, pPuback<<4, 2, byte(id>>8), byte(id))
}

// tryPubacks writes p, n whole PUBACKs, straight to the socket if the
// connection is open and the socket takes them at once, and reports
// whether it did.
func tryPubacks(server *mqtt.Server, cl *mqtt.Client, p []byte, n int) bool {
	gc, ok := cl.Net.Conn.(*guardConn)
	if !ok || cl.Closed() || !gc.tryWrite(p) {
		return false
	}
	atomic.AddInt64(&server.Info.BytesSent, int64(len(p)))
	atomic.AddInt64(&server.Info.PacketsSent, int64(n))
	return true
}

// forward passes a stored publish on as mochi does once it acknowledged
// one: retained if asked, delivered to subscribers. The server's inline
// client injects it (mochi's own path after the PUBACK is not taken), so
// a subscriber with No Local set also receives its own publishes. With
// nothing to retain and nobody subscribed (mochi's count; the gateway
// makes no inline subscriptions, which it leaves out) there is nothing to
// do: most sites have no MQTT subscriber, and mochi's path would cost
// about a tenth of the daemon's CPU per reading to find none.
func forward(server *mqtt.Server, inline *mqtt.Client, pk packets.Packet) {
	if !forwards(server, pk) {
		return // nothing to keep and nobody subscribed: mochi's path would find no one
	}
	pk.Properties.TopicAlias, pk.Properties.TopicAliasFlag = 0, false // resolved already
	_ = server.InjectPacket(inline, pk)
}

// forwards reports whether forward has anything to do with pk.
func forwards(server *mqtt.Server, pk packets.Packet) bool {
	return pk.FixedHeader.Retain || atomic.LoadInt64(&server.Info.Subscriptions) > 0
}
