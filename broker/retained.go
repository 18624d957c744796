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
// What is held is learnt from mochi's retain and expiry hooks — publishes
// and wills alike — so a slot frees when the library drops the message.
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

// allow reports whether device may retain a message on topic now: a
// topic it already holds always, a new one within its share and the
// budget (admins and command topics may use the reserve).
func (r *retainedBook) allow(device string, admin bool, topic string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.owner[topic]; ok {
		return true // replaces a message: no new slot
	}
	room := r.max - r.reserve
	if admin || isCommandTopic(topic, deviceSegment(topic)) {
		room = r.max
	}
	return len(r.owner) < room && (admin || r.held[device] < r.perDevice)
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

// OnRetainedExpired frees the slot of a retained message mochi expired.
func (h *hook) OnRetainedExpired(filter string) { h.b.retained.clear(filter) }

// dropRetained deletes the retained messages a removed device held.
func (b *Broker) dropRetained(device string) {
	for _, topic := range b.retained.of(device) {
		b.server.Topics.RetainMessage(packets.Packet{TopicName: topic, FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: true}})
		b.retained.clear(topic)
	}
}
