package fleet

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// client is one node's MQTT 3.1.1 connection: a TCP socket whose packets
// mochi's packets package encodes and decodes, with one publish in flight
// at a time, as an ESP32 sends (or several, see Config.InFlight). It costs
// two system calls per reading and no goroutine of its own, so that on a
// small machine the load generator leaves the CPU to the broker it
// measures (a full client library such as paho spends several times the
// broker's own CPU per message).
type client struct {
	conn net.Conn
	r    *bufio.Reader
	out  bytes.Buffer
	id   uint16
}

// errRefused is a CONNACK that refused the connection.
var errRefused = errors.New("connection refused")

// dial connects n to broker and waits for its CONNACK.
func dial(broker string, n Node, timeout time.Duration) (*client, error) {
	conn, err := net.DialTimeout("tcp", broker, timeout)
	if err != nil {
		return nil, err
	}
	c := &client{conn: conn, r: bufio.NewReaderSize(conn, 256)}
	pk := packets.Packet{ProtocolVersion: 4, FixedHeader: packets.FixedHeader{Type: packets.Connect},
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: n.ID, Keepalive: 60, Clean: true}}
	if n.Password != "" { // else anonymous: a username alone is a failed login
		pk.Connect.UsernameFlag, pk.Connect.Username = true, []byte(n.ID)
		pk.Connect.PasswordFlag, pk.Connect.Password = true, []byte(n.Password)
	}
	if err := c.send(&pk, (*packets.Packet).ConnectEncode, timeout); err != nil {
		return nil, errors.Join(err, conn.Close())
	}
	ack, err := c.read(timeout)
	switch {
	case err != nil:
	case ack.FixedHeader.Type != packets.Connack:
		err = fmt.Errorf("want CONNACK, got packet type %d", ack.FixedHeader.Type)
	case ack.ReasonCode != 0:
		err = fmt.Errorf("%w: CONNACK code %d", errRefused, ack.ReasonCode)
	}
	if err != nil {
		return nil, errors.Join(err, conn.Close())
	}
	return c, nil
}

// publish sends one message and, at QoS 1, waits for its PUBACK.
func (c *client) publish(topic, payload string, qos byte, timeout time.Duration) error {
	id, err := c.send1(topic, payload, qos, timeout)
	if err != nil || qos == 0 {
		return err
	}
	for {
		got, err := c.ack(timeout)
		if err != nil || got == id {
			return err
		}
	}
}

// send1 sends one message and returns its packet id (QoS 1).
func (c *client) send1(topic, payload string, qos byte, timeout time.Duration) (uint16, error) {
	pk := packets.Packet{ProtocolVersion: 4, FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos},
		TopicName: topic, Payload: []byte(payload)}
	if qos > 0 {
		c.id = c.id%65535 + 1
		pk.PacketID = c.id
	}
	return pk.PacketID, c.send(&pk, (*packets.Packet).PublishEncode, timeout)
}

// ack reads packets until a PUBACK and returns its packet id.
func (c *client) ack(timeout time.Duration) (uint16, error) {
	for {
		pk, err := c.read(timeout)
		if err != nil {
			return 0, err
		}
		if pk.FixedHeader.Type == packets.Puback {
			return pk.PacketID, nil
		}
	}
}

// close says goodbye and closes the socket.
func (c *client) close() {
	pk := packets.Packet{ProtocolVersion: 4, FixedHeader: packets.FixedHeader{Type: packets.Disconnect}}
	_ = c.send(&pk, (*packets.Packet).DisconnectEncode, time.Second) // the socket closes either way
	_ = c.conn.Close()
}

func (c *client) send(pk *packets.Packet, encode func(*packets.Packet, *bytes.Buffer) error, timeout time.Duration) error {
	c.out.Reset()
	if err := encode(pk, &c.out); err != nil {
		return err
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(timeout)) // a closed socket fails the write below
	_, err := c.conn.Write(c.out.Bytes())
	return err
}

// read reads one packet. Only CONNACK and PUBACK are decoded.
func (c *client) read(timeout time.Duration) (packets.Packet, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout)) // a closed socket fails the read below
	var pk packets.Packet
	hb, err := c.r.ReadByte()
	if err != nil {
		return pk, err
	}
	if err := pk.FixedHeader.Decode(hb); err != nil {
		return pk, err
	}
	n, _, err := packets.DecodeLength(c.r)
	if err != nil {
		return pk, err
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return pk, err
	}
	pk.ProtocolVersion = 4
	pk.FixedHeader.Remaining = n
	switch pk.FixedHeader.Type {
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Puback:
		err = pk.PubackDecode(body)
	}
	return pk, err
}
