package broker

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/mochi-mqtt/server/v2/packets"
)

// ErrBusy is returned by Probe when the broker answered no CONNACK because
// a connection limit turned the probe away: alive, but new devices cannot
// get in either.
var ErrBusy = errors.New("broker: at a connection limit")

// probeUser is the username of the broker's own health probe; its
// password is random per process, so no device can log in as it.
const probeUser = "$fieldgate-probe"

// newProbeSecret returns the probe's password for this process.
func newProbeSecret() []byte {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return []byte(hex.EncodeToString(b[:]))
}

// isProbe reports whether a CONNECT carries the probe's credentials.
func (b *Broker) isProbe(user string, password []byte) bool {
	return user == probeUser && subtle.ConstantTimeCompare(password, b.probeSecret) == 1
}

// Probe proves that the broker reads and answers: it connects to its own
// MQTT listener (plain TCP, else TLS), sends a CONNECT and waits for the
// CONNACK, as a device would. It fails when ctx ends first (a broker that
// no longer reads its sockets, an accept loop that stopped), and with
// ErrBusy when a connection limit refused it.
func (b *Broker) Probe(ctx context.Context) error {
	var conn net.Conn
	var err error
	d := net.Dialer{}
	switch {
	case b.addrs["tcp"] != "":
		conn, err = d.DialContext(ctx, "tcp", b.addrs["tcp"])
	case b.addrs["tls"] != "":
		td := tls.Dialer{NetDialer: &d, Config: &tls.Config{InsecureSkipVerify: true}} // itself, on loopback
		conn, err = td.DialContext(ctx, "tcp", b.addrs["tls"])
	default:
		return nil // no socket listener to probe (WebSocket only)
	}
	if err != nil {
		return fmt.Errorf("broker: probe: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl) // a failed deadline shows as the read's error
	}
	pk := packets.Packet{ProtocolVersion: 4, FixedHeader: packets.FixedHeader{Type: packets.Connect},
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: probeUser, Keepalive: 10, Clean: true,
			UsernameFlag: true, Username: []byte(probeUser), PasswordFlag: true, Password: b.probeSecret}}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		return err
	}
	if _, err := conn.Write(buf.Bytes()); err != nil {
		return b.probeFailed(err)
	}
	r := bufio.NewReader(conn)
	var ack [4]byte
	if _, err := io.ReadFull(r, ack[:]); err != nil {
		return b.probeFailed(err)
	}
	if ack[0] != packets.Connack<<4 || ack[3] != 0 {
		return fmt.Errorf("broker: probe: unexpected answer % x", ack)
	}
	buf.Reset()
	disc := packets.Packet{ProtocolVersion: 4, FixedHeader: packets.FixedHeader{Type: packets.Disconnect}}
	if err := disc.DisconnectEncode(&buf); err == nil {
		_, _ = conn.Write(buf.Bytes()) // a polite goodbye; the close follows anyway
	}
	return nil
}

// probeFailed says why a probe got no CONNACK.
func (b *Broker) probeFailed(err error) error {
	g := b.guard.stats()
	switch {
	case g.Active >= int64(b.guard.lim.MaxConnections):
		return fmt.Errorf("%w: %d clients connected, the cap is %d", ErrBusy, g.Active, b.guard.lim.MaxConnections)
	case g.Pending >= int64(b.guard.lim.MaxPending):
		return fmt.Errorf("%w: %d sockets have not sent CONNECT yet, the cap is %d", ErrBusy, g.Pending, b.guard.lim.MaxPending)
	}
	return fmt.Errorf("broker: probe: no CONNACK: %w", err)
}
