package broker

import (
	"errors"
	"net"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"fieldgate/store/credentials"
)

// Failed MQTT logins: an address gets 10 free attempts (a site's nodes may
// share a NAT), a device id 5 (except from the address it last connected
// from); then each waits 1 s, doubling with every further failure, up to
// 10 and 5 minutes.
var (
	addrPolicy   = credentials.Policy{Free: 10, Base: time.Second, Max: 10 * time.Minute}
	devicePolicy = credentials.Policy{Free: 5, Base: time.Second, Max: 5 * time.Minute}
)

// errRefused ends a CONNECT that OnConnect answered with a refusal.
var errRefused = errors.New("connection refused")

// OnConnect decides every CONNECT before mochi answers it: the login
// throttle (checked before any bcrypt), the credentials, the per-device
// reconnect rate, the will's topic. A refusal is a CONNACK with the reason
// (MQTT 5: 0x86 bad credentials, 0x87 not authorized, 0x89 busy, 0x9F
// connection rate exceeded; 3.1.1: 0x05 not authorized, or 0x03 server
// unavailable, which tells a device to retry later rather than that its
// password is wrong). An admitted client's id is scoped to its device, so that no
// device can take over or lock out another's session by reusing its
// client id.
func (h *hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	id, code := h.admit(cl, pk)
	if id == nil {
		_ = h.b.server.SendConnack(cl, code, false, nil) // the socket closes either way
		return errRefused
	}
	cl.ID = id.device + "/" + cl.ID
	if gc, ok := cl.Net.Conn.(*guardConn); ok && gc.fc.keepSet {
		cl.State.ServerKeepalive = true // MQTT 5: the CONNACK says which keepalive holds
	}
	h.mu.Lock()
	h.remember(cl, id)
	h.mu.Unlock()
	return nil
}

// OnConnectAuthenticate admits the clients OnConnect admitted.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	return h.identity(cl) != nil
}

// admit returns the identity of an admitted client, or the CONNACK code of
// its refusal.
func (h *hook) admit(cl *mqtt.Client, pk packets.Packet) (*identity, packets.Code) {
	b := h.b
	user, v5 := string(pk.Connect.Username), cl.Properties.ProtocolVersion == 5
	busy := packets.ErrServerUnavailable // 3.1.1 has no better "not now"
	if v5 {
		busy = packets.ErrConnectionRateExceeded
	}
	id := &identity{}
	switch {
	case b.isProbe(user, pk.Connect.Password):
		return &identity{device: probeUser, probe: true}, packets.CodeSuccess
	case user == "" && b.o.AllowAnonymous:
		if err := ValidateDeviceID(cl.ID); err != nil { // bench mode: the client id is the device
			b.count(&b.stats.AuthFailures)
			b.log.Warn("mqtt: anonymous client refused: its client id is not a device id", "addr", remoteHost(cl.Net.Remote), "err", err)
			return nil, packets.ErrClientIdentifierNotValid
		}
		id.device, id.anonymous = cl.ID, true
	case ValidateDeviceID(user) != nil:
		// A name no device can have: no bcrypt, and only the address is
		// throttled (a made-up name must not become a key).
		addr := remoteHost(cl.Net.Remote)
		if wait := b.logins.Wait(addr, ""); wait > 0 {
			b.count(&b.stats.AuthThrottled)
			return nil, busy
		}
		b.count(&b.stats.AuthFailures)
		b.logins.Fail(addr, "")
		b.log.Warn("mqtt: login refused: no device can have that name", "user", user, "addr", addr)
		return nil, packets.ErrBadUsernameOrPassword
	default:
		addr := remoteHost(cl.Net.Remote)
		if wait := b.logins.Wait(addr, user); wait > 0 {
			b.count(&b.stats.AuthThrottled)
			b.log.Warn("mqtt: login refused unchecked: too many failed logins", "user", user, "addr", addr, "wait", wait.Round(time.Second))
			return nil, busy
		}
		d, err := b.auth.check(user, pk.Connect.Password)
		if err != nil {
			b.count(&b.stats.AuthFailures)
			b.log.Warn("mqtt: login refused", "user", user, "addr", addr, "err", err)
			if errors.Is(err, errBadCredentials) {
				b.logins.Fail(addr, user)
				return nil, packets.ErrBadUsernameOrPassword
			}
			if v5 {
				return nil, packets.ErrServerBusy
			}
			return nil, packets.ErrServerUnavailable
		}
		b.logins.Succeed(addr, user)
		id.device, id.admin = d.ID, d.Admin
	}
	if !b.limits.connect(id.device, b.o.Now()) {
		b.count(&b.stats.ConnectLimited)
		b.log.Warn("mqtt: connection refused: the device reconnects too often", "device", id.device, "addr", remoteHost(cl.Net.Remote))
		return nil, busy
	}
	if code := b.hook.checkWill(cl, pk, v5); code != packets.CodeSuccess {
		b.log.Warn("mqtt: connection refused: its will is too large", "device", id.device, "bytes", len(pk.Connect.WillPayload))
		return nil, code
	}
	b.wills.done(id.device + "/" + cl.ID) // a reconnect drops the delayed will of its session
	if pk.Connect.WillFlag && !CanPublish(id.device, id.admin, pk.Connect.WillTopic) {
		b.count(&b.stats.ACLDenied)
		b.log.Warn("mqtt: connection refused: will on a foreign topic", "device", id.device, "topic", pk.Connect.WillTopic)
		if v5 {
			return nil, packets.ErrNotAuthorized
		}
		return nil, packets.ErrBadUsernameOrPassword // 3.1.1: 0x05 not authorized
	}
	return id, packets.CodeSuccess
}

// remoteHost is the host part of a client's remote address.
func remoteHost(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// OnPacketEncode adjusts what mochi writes. A 3.1.1 client gets no
// DISCONNECT (that protocol has none from the server: refusing a publish
// means closing the connection, which mochi does once the write fails),
// and an MQTT 5 CONNACK advertises the packet size limit the guard
// enforces, beside the Receive Maximum and Server Keep Alive mochi sends.
// Topic aliases (maximum 0) and retain (available, capped) are what an
// absent property means.
func (h *hook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	switch {
	case pk.FixedHeader.Type == packets.Disconnect && cl.Properties.ProtocolVersion < 5:
		pk.FixedHeader.Type = packets.Reserved
	case pk.FixedHeader.Type == packets.Connack && cl.Properties.ProtocolVersion == 5 && pk.ReasonCode == 0:
		pk.Properties.MaximumPacketSize = uint32(h.b.o.Limits.MaxPacketSize)
	}
	return pk
}
