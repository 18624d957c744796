package broker

import (
	"strings"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Will limits. A will is a message the broker keeps for as long as its
// client is connected and, when delayed (MQTT 5), after: one device must
// not be able to park wills on the gateway for ever.
const (
	// maxWillPayload bounds a will's payload ("offline" is what nodes send).
	maxWillPayload = 1024
	// maxDelayedWillsPerDevice and maxDelayedWills bound the wills waiting
	// for their delay; past them a will is sent at once.
	maxDelayedWillsPerDevice = 8
	maxDelayedWills          = 256
)

// delayedWills are the wills mochi keeps waiting for their delay, by
// client id (mochi drops one, with no hook, when its client reconnects).
type delayedWills struct {
	mu       sync.Mutex
	byClient map[string]string // client id → device
	perDev   map[string]int
}

func (d *delayedWills) add(clientID, device string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byClient == nil {
		d.byClient, d.perDev = map[string]string{}, map[string]int{}
	}
	if _, ok := d.byClient[clientID]; !ok && (len(d.byClient) >= maxDelayedWills || d.perDev[device] >= maxDelayedWillsPerDevice) {
		return false
	}
	d.drop(clientID)
	d.byClient[clientID] = device
	d.perDev[device]++
	return true
}

// done forgets clientID's delayed will: sent, or dropped by a reconnect.
func (d *delayedWills) done(clientID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.drop(clientID)
}

func (d *delayedWills) drop(clientID string) {
	dev, ok := d.byClient[clientID]
	if !ok {
		return
	}
	delete(d.byClient, clientID)
	if d.perDev[dev]--; d.perDev[dev] <= 0 {
		delete(d.perDev, dev)
	}
}

// count returns how many wills wait for their delay.
func (d *delayedWills) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.byClient)
}

// checkWill vets a CONNECT's will: its size, and its delay, which may not
// outlast the session (MQTT 5 sends a will at the earlier of the two; a
// session that ends when the connection does leaves no room for a delay).
// It returns the refusal code, or success.
func (h *hook) checkWill(cl *mqtt.Client, pk packets.Packet, v5 bool) packets.Code {
	if !pk.Connect.WillFlag {
		return packets.CodeSuccess
	}
	if len(pk.Connect.WillPayload) > maxWillPayload {
		h.b.count(&h.b.stats.WillsRefused)
		if v5 {
			return packets.ErrPacketTooLarge
		}
		return packets.ErrServerUnavailable
	}
	session := cl.Properties.Props.SessionExpiryInterval
	if !v5 {
		session = 0
	}
	session = min(session, uint32(maxSessionExpiry.Seconds()))
	if cl.Properties.Will.WillDelayInterval > session {
		cl.Properties.Will.WillDelayInterval = session
	}
	return packets.CodeSuccess
}

// OnWill applies the retained rules to a will (a retained will used to
// skip max_retained) and the bounds on delayed ones.
func (h *hook) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	device, admin := deviceOfClientID(cl.ID), false
	if id := h.identity(cl); id != nil {
		device, admin = id.device, id.admin
	}
	if will.Retain {
		will.Retain = h.b.keepRetained(device, admin, will.TopicName, will.Payload)
	}
	if cl.Properties.Will.WillDelayInterval > 0 && !h.b.wills.add(cl.ID, device) {
		cl.Properties.Will.WillDelayInterval = 0 // sent now: too many wait already
	}
	return will, nil
}

// OnWillSent forgets a delayed will once mochi sent it.
func (h *hook) OnWillSent(cl *mqtt.Client, _ packets.Packet) { h.b.wills.done(cl.ID) }

// deviceOfClientID is the device a broker client id belongs to: admitted
// clients' ids are "device/client-id".
func deviceOfClientID(id string) string {
	dev, _, _ := strings.Cut(id, "/")
	return dev
}
