package broker

import (
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// retainedBook accounts for the retained messages clients hold on the
// broker: MaxRetained in all, each device's share of them, and room kept
// for admins and for command topics (fieldgate/{device}/cmd/…), so that
// one device cannot spend the budget the gateway's configuration needs.
// A slot is taken when the broker decides to keep a message (take), not
// when mochi reports it kept: publishes and wills of one device decide on
// several connections at once, and a book that waited for mochi let each
// of them fit in the same last slot (twelve wills held where four may
// be). mochi's retain and expiry hooks then keep the book true — a
// cleared or expired message frees its slot — for publishes and wills
// alike, and for readings the gateway's own client retains once stored.
type retainedBook struct {
	max, perDevice, reserve int

	mu    sync.Mutex
	owner map[string]string // topic → the device that set it
	held  map[string]int    // device → topics it holds
}

// newRetainedBook accounts for capacity retained messages: each device
// may hold a sixteenth of them (at least 4), and an eighth is kept for
// admins and command topics.
func newRetainedBook(capacity int) *retainedBook {
	return &retainedBook{max: capacity, perDevice: max(4, capacity/16), reserve: capacity / 8,
		owner: map[string]string{}, held: map[string]int{}}
}

// take reports whether device may retain a message on topic, and if so
// holds the topic's slot for it from now: a topic it already holds
// always, a new one within its share and the budget (admins and command
// topics may use the reserve). A message that is then not kept after all
// (its store failed, its delayed will was dropped) leaves the slot held
// until the device's next message on that topic, or its removal: it
// spends only the device's own share.
func (r *retainedBook) take(device string, admin bool, topic string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.owner[topic]; ok {
		return true // replaces a message: no new slot
	}
	room := r.max - r.reserve
	if admin || isCommandTopic(topic, deviceSegment(topic)) {
		room = r.max
	}
	if len(r.owner) >= room || (!admin && r.held[device] >= r.perDevice) {
		return false
	}
	r.owner[topic] = device
	r.held[device]++
	return true
}

// set records that device's message on topic is retained.
func (r *retainedBook) set(topic, device string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forget(topic)
	r.owner[topic] = device
	r.held[device]++
}

// clear records that topic holds no retained message any more.
func (r *retainedBook) clear(topic string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forget(topic)
}

// forget frees topic's slot. r.mu is held.
func (r *retainedBook) forget(topic string) {
	dev, ok := r.owner[topic]
	if !ok {
		return
	}
	delete(r.owner, topic)
	if r.held[dev]--; r.held[dev] <= 0 {
		delete(r.held, dev)
	}
}

// count returns how many retained messages clients hold.
func (r *retainedBook) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.owner)
}

// of returns the topics device holds.
func (r *retainedBook) of(device string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for t, d := range r.owner {
		if d == device {
			out = append(out, t)
		}
	}
	return out
}

// OnRetainMessage records what mochi retained (a payload) or cleared (an
// empty one), from a client's publish or will; the gateway's own
// messages (the inline client) are not counted.
func (h *hook) OnRetainMessage(cl *mqtt.Client, pk packets.Packet, _ int64) {
	if cl == nil || cl.Net.Inline {
		return
	}
	if len(pk.Payload) == 0 {
		h.b.retained.clear(pk.TopicName)
		return
	}
	device := ""
	if id := h.identity(cl); id != nil {
		device = id.device
	} else {
		device = deviceOfClientID(cl.ID) // a will sent after the connection went
	}
	h.b.retained.set(pk.TopicName, device)
}

// retain decides whether device's publish pk, if it asks to be retained,
// is kept (see keepRetained); if not, its retain flag is cleared.
func (b *Broker) retain(device string, admin bool, pk *packets.Packet) {
	if pk.FixedHeader.Retain {
		pk.FixedHeader.Retain = b.keepRetained(device, admin, pk.TopicName, pk.Payload)
	}
}

// keepRetained decides whether device's retained message (a publish or a
// will) on topic is kept: within the device's share (or the cap) it takes
// a slot; past it the message is delivered but not kept, and counted. An
// empty payload clears a topic and takes nothing.
func (b *Broker) keepRetained(device string, admin bool, topic string, payload []byte) bool {
	if len(payload) == 0 || b.retained.take(device, admin, topic) {
		return true
	}
	b.count(&b.stats.RetainDropped)
	return false
}

// OnRetainedExpired frees the slot of a retained message mochi expired.
func (h *hook) OnRetainedExpired(filter string) { h.b.retained.clear(filter) }

// dropRetained deletes the retained messages a removed device held.
func (b *Broker) dropRetained(device string) {
	for _, topic := range b.retained.of(device) {
		b.server.Topics.RetainMessage(packets.Packet{TopicName: topic, FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: true}})
		b.retained.clear(topic)
	}
}
