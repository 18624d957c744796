package broker

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"fieldgate/broker/payload"
	"fieldgate/sensors/plausible"
	"fieldgate/store"
)

// identity is who a connected client is.
type identity struct {
	device      string
	admin       bool
	probe       bool // the broker's own health probe: no rights, not a device
	anonymous   bool // admitted without credentials (bench mode): no stored device
	established bool // counted as one of the device's sessions

	// acks, made on its first QoS 1 publish of readings, is used only by
	// the connection's read goroutine (the writers hold their own pointer);
	// pubacks holds the PUBACKs being written, by whoever holds its writing.
	acks    *ackQueue
	pubacks []byte
	// wait bounds each publish's store call, and readings holds its
	// decoded readings until the store copied them: the read goroutine's.
	wait     commitWait
	readings []store.Reading

	// What the read goroutine learned on earlier publishes, so that the
	// next one of the same kind costs no shared lock (see publishCache).
	cache publishCache
}

// keptReadings is the most readings a connection keeps room for between
// publishes (a SenML pack may hold more; its array is not kept).
const keptReadings = 16

// hook is fieldgate's mochi hook: authentication and limits at CONNECT
// (connect.go), ACL, online state, and the ingest of every publish.
type hook struct {
	mqtt.HookBase
	b *Broker

	mu  sync.Mutex
	ids map[*mqtt.Client]*identity // every connection from CONNECT to disconnect
	// offline holds, by client id, the sessions that outlive their
	// connection (a persistent session): messages for their
	// subscriptions are queued, judged by the device's stored rights.
	offline map[string]offlineSession
}

// offlineSession is a disconnected client whose session persists.
type offlineSession struct {
	cl        *mqtt.Client
	device    string
	anonymous bool
}

// ID names the hook.
func (h *hook) ID() string { return "fieldgate" }

// provided are the events the hook handles. mochi asks about each event
// of every packet, so the answer is a table lookup.
var provided = func() (t [256]bool) {
	for _, b := range []byte{
		mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnPacketEncode, mqtt.OnACLCheck, mqtt.OnSessionEstablished,
		mqtt.OnDisconnect, mqtt.OnPublish, mqtt.OnRetainMessage, mqtt.OnRetainedExpired, mqtt.OnWill, mqtt.OnWillSent,
		mqtt.OnClientExpired, mqtt.OnQosPublish,
	} {
		t[b] = true
	}
	return t
}()

// Provides reports whether the hook handles event b.
func (h *hook) Provides(b byte) bool { return provided[b] }

// identity is the client's, or nil once it disconnected. A TCP
// connection carries it (set and cleared under h.mu with the table), so
// that each publish finds it without the lock.
func (h *hook) identity(cl *mqtt.Client) *identity {
	if gc, ok := cl.Net.Conn.(*guardConn); ok {
		return gc.id.Load()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ids[cl]
}

// OnACLCheck applies the ACL to publishes and subscriptions.
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	id := h.identity(cl)
	if id == nil && !write {
		id = h.offlineIdentity(cl)
	}
	if id == nil {
		return false
	}
	if write && id.cache.allowed(topic) {
		return true
	}
	ok := CanSubscribe(id.device, id.admin, topic)
	if write {
		ok = CanPublish(id.device, id.admin, topic)
	}
	if ok && write {
		id.cache.allow(topic)
	}
	if !ok {
		h.b.count(&h.b.stats.ACLDenied)
		h.b.log.Warn("mqtt: denied by ACL", "device", id.device, "topic", topic, "publish", write)
		verb := "subscribe to"
		if write {
			verb = "publish to"
		}
		h.b.activity.message(id.device, h.b.o.Now(), 0, fmt.Errorf("not allowed to %s %s", verb, truncate(topic)))
	}
	return ok
}

// OnSessionEstablished counts one more live session of the device: it is
// online while it has at least one. The count changes under h.mu with the
// connection table, so the two always agree.
func (h *hook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.offline, cl.ID) // taken over, or started anew
	if id := h.ids[cl]; id != nil && !id.probe {
		id.established = true
		h.b.activity.sessionStarted(id.device, h.b.o.Now())
	}
}

// OnDisconnect forgets the connection and counts one session fewer; a
// session taken over by the device's reconnect leaves it online.
func (h *hook) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.ids[cl]
	h.forget(cl)
	if id != nil && id.established {
		h.b.activity.sessionEnded(id.device, h.b.o.Now())
	}
	if id != nil && id.established && !expire && h.current(cl) {
		h.offline[cl.ID] = offlineSession{cl: cl, device: id.device, anonymous: id.anonymous}
	}
}

// remember enters an admitted client's identity. h.mu is held.
func (h *hook) remember(cl *mqtt.Client, id *identity) {
	h.ids[cl] = id
	if gc, ok := cl.Net.Conn.(*guardConn); ok {
		gc.id.Store(id)
	}
}

// forget removes a client's identity. h.mu is held.
func (h *hook) forget(cl *mqtt.Client) {
	delete(h.ids, cl)
	if gc, ok := cl.Net.Conn.(*guardConn); ok {
		gc.id.Store(nil)
	}
}

// current reports whether cl is the session the server holds under its
// client id (not one a reconnect took over).
func (h *hook) current(cl *mqtt.Client) bool {
	now, ok := h.b.server.Clients.Get(cl.ID)
	return ok && now == cl && !cl.IsTakenOver()
}

// OnClientExpired forgets a persistent session the server expired.
func (h *hook) OnClientExpired(cl *mqtt.Client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s, ok := h.offline[cl.ID]; ok && s.cl == cl {
		delete(h.offline, cl.ID)
	}
}

// offlineIdentity is the identity of a disconnected client's persistent
// session, with the rights its device has now in the store: a device
// removed since gets nothing, one made admin or not since is judged so.
func (h *hook) offlineIdentity(cl *mqtt.Client) *identity {
	h.mu.Lock()
	s, ok := h.offline[cl.ID]
	h.mu.Unlock()
	if !ok || s.cl != cl {
		return nil
	}
	if s.anonymous {
		return &identity{device: s.device, anonymous: true}
	}
	d, err := h.b.st.Device(s.device)
	if err != nil {
		return nil
	}
	return &identity{device: d.ID, admin: d.Admin}
}

// OnQosPublish counts the messages queued for a persistent session while
// its client is away: it finds them when it reconnects.
func (h *hook) OnQosPublish(cl *mqtt.Client, _ packets.Packet, _ int64, resends int) {
	if resends == 0 && cl.Closed() && !cl.Net.Inline {
		h.b.count(&h.b.stats.QueuedOffline)
	}
}

// sweep forgets connections that were admitted but closed without a
// session (their CONNACK could not be written), which mochi reports to no
// hook.
func (h *hook) sweep(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for cl, id := range h.ids {
		if !id.established && cl.Closed() && now.Unix()-cl.StopTime() > 60 {
			h.forget(cl)
		}
	}
	for cid, s := range h.offline {
		if !h.current(s.cl) { // taken over or expired without a word
			delete(h.offline, cid)
		}
	}
}

// OnPublish decodes the payload by topic shape and stores the readings. A
// QoS 1 publish of readings is queued for the commit and its PUBACK written
// once the readings are fsync'd (see ackQueue): mochi is told to write
// none, and the read goroutine goes on. A QoS 2 publish returns only once
// its readings are committed, so the PUBREC mochi then writes means "on
// disk". If the commit fails, no acknowledgement may go out: the client is
// disconnected (MQTT 5: with 0x97 when the store is full, else 0x80), so
// that it sends again later. Whatever else mochi acknowledges itself waits
// until the PUBACKs queued before it are written, keeping them in order.
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	id := h.identity(cl)
	if id == nil {
		return pk, packets.ErrRejectPacket
	}
	pk, err := h.publish(cl, id, pk)
	if pk.FixedHeader.Qos > 0 && !errors.Is(err, packets.ErrRejectPacket) && id.acks != nil &&
		!id.acks.waitFor(0, h.b.o.CommitTimeout) {
		h.storeFailed(cl, id.device, errAcksStuck)
		return pk, packets.ErrRejectPacket
	}
	return pk, err
}

// errCommitTimeout is a commit that did not end within CommitTimeout;
// errAcksStuck the PUBACKs of earlier publishes that could not all be
// written in that time (a commit that hangs, or a peer that reads nothing).
var (
	errCommitTimeout = errors.New("broker: earlier readings not committed within the commit timeout")
	errAcksStuck     = errors.New("broker: earlier PUBACKs not written within the commit timeout")
)

// publish takes one publish of an admitted client; see OnPublish.
func (h *hook) publish(cl *mqtt.Client, id *identity, pk packets.Packet) (packets.Packet, error) {
	b, now := h.b, h.b.o.Now()
	b.count(&b.stats.Messages)
	v5 := cl.Properties.ProtocolVersion == 5
	if !b.limits.publish(&id.cache.limit, id.device, now) {
		b.count(&b.stats.RateLimited)
		b.log.Warn("mqtt: publish rate exceeded", "device", id.device)
		if !v5 && pk.FixedHeader.Qos > 0 {
			_ = b.server.DisconnectClient(cl, packets.ErrQuotaExceeded) // no PUBACK: the device sends again later
			return pk, packets.ErrRejectPacket
		}
		return pk, refuse(cl, pk, packets.ErrQuotaExceeded)
	}
	if rt := pk.Properties.ResponseTopic; rt != "" && !id.admin && !CanSubscribe(id.device, false, rt) {
		// A request's reply address must be the device's own command
		// topics: naming another device's, it would make a request/response
		// consumer (a confused deputy) publish commands to that device.
		b.count(&b.stats.ACLDenied)
		b.log.Warn("mqtt: publish refused: its response topic is not the device's own", "device", id.device, "topic", rt)
		return pk, refuse(cl, pk, packets.ErrNotAuthorized)
	}
	t := id.cache.topic(pk.TopicName)
	if t.Kind == KindAvailability {
		online := strings.EqualFold(strings.TrimSpace(string(pk.Payload)), "online")
		b.activity.reported(t.Device, online, now)
		b.retain(id.device, id.admin, &pk)
		return pk, nil
	}
	if t.Kind == KindNone {
		b.count(&b.stats.Unmatched)
		b.retain(id.device, id.admin, &pk)
		return pk, nil // allowed but not a reading: acknowledged, not stored
	}
	rs, err := h.decode(id.readings[:0], t, pk.Payload, now, id.device)
	if cap(rs) <= keptReadings {
		id.readings = rs[:0] // the store copies them: the next publish reuses the array
	}
	if err != nil {
		b.count(&b.stats.Rejected)
		b.activity.message(id.device, now, 0, err)
		b.log.Warn("mqtt: payload rejected", "device", id.device, "topic", pk.TopicName, "err", err)
		return pk, refuse(cl, pk, packets.ErrPayloadFormatInvalid) // resending cannot fix it
	}
	rs, capErr := id.cache.admit(b.quantities, id.device, rs)
	if capErr != nil {
		b.count(&b.stats.QuantityCapped)
		b.log.Warn("mqtt: readings refused", "device", id.device, "err", capErr)
		if len(rs) == 0 {
			b.activity.message(id.device, now, 0, capErr)
			return pk, refuse(cl, pk, packets.ErrQuotaExceeded)
		}
	}
	b.retain(id.device, id.admin, &pk) // decided once the payload passed: a refused one takes no slot
	if pk.FixedHeader.Qos == 1 {
		if err := h.storeThen(cl, id, newPendingAck(pk, len(rs), capErr, now), rs); err != nil {
			return pk, err
		}
		return taken(pk), nil
	}
	if err := h.store(id, pk.FixedHeader.Qos, rs); err != nil {
		h.storeFailed(cl, id.device, err)
		return pk, packets.ErrRejectPacket
	}
	h.stored(id.device, len(rs), capErr, now)
	return pk, nil
}

// storeThen queues a QoS 1 publish's readings for the commit; its PUBACK
// follows from the ack queue. It waits while the connection already has
// the receive maximum of publishes in flight (an MQTT 5 client never sends
// more; a 3.1.1 client is slowed down). An error means the publish was
// refused and the connection is being closed.
func (h *hook) storeThen(cl *mqtt.Client, id *identity, a *pendingAck, rs []store.Reading) error {
	if id.acks == nil {
		id.acks = newAckQueue(func(as []*pendingAck, block bool) int { return h.finish(cl, id, as, block) })
	}
	q := id.acks
	if !q.waitFor(int(h.b.o.ReceiveMaximum)-1, h.b.o.CommitTimeout) {
		a.release()
		h.storeFailed(cl, id.device, errCommitTimeout)
		return packets.ErrRejectPacket
	}
	ctx := id.wait.start(h.b.o.CommitTimeout)
	defer id.wait.stop()
	q.push(a)
	lead := store.LeadIfIdle // a lone client in a closed loop: no hand-off
	if morePending(cl) {
		lead = store.FlusherCommits // read the next publishes while the sync runs
	}
	if err := h.b.st.AppendThen(ctx, rs, lead, a.complete, q.flushFunc); err != nil {
		a.complete(err)
	}
	q.submitted()
	return nil
}

// taken is what OnPublish gives mochi back for a publish the ack queue
// answers: an ignored QoS 0 publish, which mochi neither acknowledges,
// retains nor delivers (forward does that once it is stored). Refusing it
// with ErrRejectPacket would do as much, but mochi then boxes the whole
// packet for a debug log entry it does not print: 850 bytes per publish.
func taken(pk packets.Packet) packets.Packet {
	pk.FixedHeader.Qos, pk.Ignore = 0, true
	return pk
}

// morePending reports whether the connection's next packets have arrived
// already: its read goroutine should then read them while the flusher
// syncs, rather than sync itself first. The guard hands mochi one packet
// at a time, so what it holds is all that was read ahead. Only the read
// goroutine may call it.
func morePending(cl *mqtt.Client) bool {
	gc, ok := cl.Net.Conn.(*guardConn)
	return ok && len(gc.in) > 0
}

// finish acknowledges committed publishes, oldest first, or refuses one
// whose commit failed, and forwards what was stored (see ackQueue.finish);
// it reports how many of as it did. Unless block, it does only what cannot
// block: PUBACKs the socket takes at once, with nothing to forward.
func (h *hook) finish(cl *mqtt.Client, id *identity, as []*pendingAck, block bool) int {
	if n := h.pubacks(cl, id, as); n > 0 {
		return n
	}
	if h.finishOne(cl, id.device, as[0], block) {
		return 1
	}
	return 0
}

// pubacks acknowledges, in one write that cannot block, the publishes at
// the head of as that need nothing but their PUBACK (stored, nothing to
// forward, the connection and the broker open), and reports how many: none
// if the socket would not take them at once, which leaves them to
// finishOne.
func (h *hook) pubacks(cl *mqtt.Client, id *identity, as []*pendingAck) int {
	if cl.Closed() || h.b.closed.Load() {
		return 0
	}
	buf := id.pubacks[:0]
	n := 0
	for _, a := range as {
		if a.err != nil || forwards(h.b.server, a.pk) {
			break
		}
		if !a.counted { // before the PUBACK: a device that has it finds its readings counted
			h.stored(id.device, a.n, a.capErr, a.at)
			a.counted = true
		}
		buf = appendPuback(buf, a.pk.PacketID)
		n++
	}
	id.pubacks = buf
	if n == 0 || !tryPubacks(h.b.server, cl, buf, n) {
		return 0
	}
	return n
}

// finishOne acknowledges one committed publish, or refuses it if its
// commit failed, and forwards what was stored; unless block, only if that
// cannot block.
func (h *hook) finishOne(cl *mqtt.Client, device string, a *pendingAck, block bool) bool {
	switch {
	case a.err != nil && cl.Closed():
		h.b.count(&h.b.stats.StoreFailures) // logged with the first of its connection's
		return true
	case a.err != nil && !block:
		return false // closing the connection writes a DISCONNECT
	case a.err != nil:
		h.storeFailed(cl, device, a.err)
		return true
	case !block && forwards(h.b.server, a.pk):
		return false
	}
	if !a.counted { // before the PUBACK: a device that has it finds its readings counted
		h.stored(device, a.n, a.capErr, a.at)
		a.counted = true
	}
	if h.b.closed.Load() {
		return true
	}
	if !writePuback(h.b.server, cl, a.pk.PacketID, block) {
		return false
	}
	forward(h.b.server, h.b.inline, a.pk)
	return true
}

// stored counts readings a commit took.
func (h *hook) stored(device string, n int, capErr error, at time.Time) {
	h.b.count(&h.b.stats.Readings, n)
	h.b.activity.message(device, at, n, capErr) // readings of known quantities are kept
}

// storeFailed refuses a publish whose readings were not committed: no
// acknowledgement goes out, the connection is closed.
func (h *hook) storeFailed(cl *mqtt.Client, device string, err error) {
	b := h.b
	b.count(&b.stats.StoreFailures)
	b.log.Error("mqtt: readings not stored; publish refused", "device", device, "err", err)
	code := packets.ErrUnspecifiedError
	if errors.Is(err, store.ErrFull) {
		code = packets.ErrQuotaExceeded
	}
	_ = b.server.DisconnectClient(cl, code) // for MQTT 3.1.1 this is the only way to say no
}

// refuse answers a publish the gateway does not take: an MQTT 5 QoS 1/2
// publish gets code in its PUBACK; QoS 0 and 3.1.1 cannot carry a refusal
// and are acknowledged as the protocol requires. Either way the message is
// neither stored, retained nor forwarded to subscribers (mochi honours a
// reason code only at QoS 1/2, and used to retain and forward the rest).
func refuse(cl *mqtt.Client, pk packets.Packet, code packets.Code) error {
	if cl.Properties.ProtocolVersion == 5 && pk.FixedHeader.Qos > 0 {
		return code
	}
	return packets.CodeSuccessIgnore
}

// decode turns a payload into readings of device, appended to dst.
func (h *hook) decode(dst []store.Reading, t Topic, p []byte, now time.Time, device string) ([]store.Reading, error) {
	var one [1]payload.Value // a plain number's, without an allocation
	var vs []payload.Value
	var err error
	switch t.Kind {
	case KindPlain, KindESPHome:
		one[0], err = payload.Number(payload.Quantity(t.Name), p)
		vs = one[:]
	case KindSenML:
		vs, err = payload.SenML(p, now)
	case KindTasmota:
		vs, err = payload.Tasmota(p)
	}
	if err != nil {
		return nil, err
	}
	rs := dst
	at, clk, mono := h.b.o.Stamp()
	for _, v := range vs {
		r := store.Reading{Source: device, Quantity: v.Quantity, Value: v.Value, Unit: v.Unit, Time: v.Time}
		switch {
		case r.Time.IsZero():
			r.Time, r.Clock, r.Mono = at, clk, mono
		case clk == store.ClockUnsynced:
			// The gateway cannot check a device's time against its own.
			r.Clock = store.ClockUnsynced
		default:
			r.Clock = h.clock(device, r.Time, now)
		}
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %v", payload.ErrInvalid, err)
		}
		if err := plausible.Check(r.Quantity, r.Unit, r.Value); err != nil {
			return nil, fmt.Errorf("%w: %v", payload.ErrInvalid, err)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// clock flags a device timestamp that cannot be right: in the future beyond
// the tolerance, or well before the device's newest reading (a node whose
// clock fell back to 1970 after a reboot without NTP).
func (h *hook) clock(device string, t, now time.Time) store.Clock {
	tol := h.b.o.TimeTolerance
	newest := h.b.activity.newestReading(device, t)
	if t.After(now.Add(tol)) || (!newest.IsZero() && t.Before(newest.Add(-24*time.Hour))) {
		h.b.count(&h.b.stats.Flagged)
		return store.ClockUnsynced
	}
	return store.ClockSynced
}

// store commits QoS 2 readings durably before returning, and queues QoS 0.
func (h *hook) store(id *identity, qos byte, rs []store.Reading) error {
	ctx := id.wait.start(h.b.o.CommitTimeout)
	defer id.wait.stop()
	if qos == 0 {
		return h.b.st.Enqueue(ctx, rs...)
	}
	return h.b.st.Append(ctx, rs...)
}
