package broker

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Builders for raw packets.

func str(s string) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...) }

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// packet prefixes body with a fixed header.
func packet(first byte, body []byte) []byte {
	out := []byte{first}
	n := len(body)
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			break
		}
	}
	return append(out, body...)
}

// connect builds a CONNECT for protocol level v (4 or 5).
func connect(v byte, clientID string, extra ...[]byte) []byte {
	body := cat(str("MQTT"), []byte{v, 0x02}, []byte{0, 60})
	if v == 5 {
		body = append(body, 0) // no properties
	}
	return packet(0x10, cat(append([]byte{}, body...), str(clientID), cat(extra...)))
}

// connected returns a checker that has seen a valid CONNECT of version v.
func connected(t *testing.T, v byte) *frameChecker {
	t.Helper()
	fc := &frameChecker{maxSize: 16 << 10}
	if err := checkOne(fc, connect(v, "dev1")); err != nil {
		t.Fatalf("valid CONNECT refused: %v", err)
	}
	return fc
}

// checkOne runs a whole packet through header and check.
func checkOne(fc *frameChecker, pkt []byte) error {
	hdr, rem, need, err := fc.header(pkt)
	if err != nil {
		return err
	}
	if need > 0 || len(pkt) != hdr+rem {
		return errors.New("test packet is not exactly one whole packet")
	}
	return fc.check(pkt, hdr)
}

var (
	// The truncated MQTT 5 SUBSCRIBE that panics mochi v2.7.9 (mochi-mqtt/server
	// issue #501): packet id 1, no properties, filter "a", options byte missing.
	crashSubscribe = []byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x00, 0x01, 'a'}
	// The 7-byte variant with an empty filter.
	crashSubscribeEmpty = []byte{0x82, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00}
)

func TestFrameCheckerAcceptsValidPackets(t *testing.T) {
	for _, v := range []byte{4, 5} {
		props := []byte{}
		if v == 5 {
			props = []byte{0}
		}
		for name, pkt := range map[string][]byte{
			"publish qos0":  packet(0x30, cat(str("fieldgate/dev1/temperature"), props, []byte("21.5"))),
			"publish qos1":  packet(0x32, cat(str("fieldgate/dev1/temperature"), []byte{0, 7}, props, []byte("21.5"))),
			"subscribe":     packet(0x82, cat([]byte{0, 1}, props, str("fieldgate/dev1/cmd/#"), []byte{1})),
			"unsubscribe":   packet(0xA2, cat([]byte{0, 2}, props, str("fieldgate/dev1/cmd/#"))),
			"puback":        packet(0x40, []byte{0, 7}),
			"pingreq":       {0xC0, 0},
			"disconnect":    {0xE0, 0},
			"publish empty": packet(0x30, cat(str("a/b"), props)),
		} {
			if err := checkOne(connected(t, v), pkt); err != nil {
				t.Errorf("v%d %s refused: %v", v, name, err)
			}
		}
	}
	// MQTT 5 properties: user property, message expiry, content type.
	fc := connected(t, 5)
	props := cat([]byte{0x26}, str("k"), str("v"), []byte{0x02, 0, 0, 0, 60}, []byte{0x03}, str("text/plain"))
	pub := packet(0x30, cat(str("a/b"), []byte{byte(len(props))}, props, []byte("x")))
	if err := checkOne(fc, pub); err != nil {
		t.Errorf("publish with properties refused: %v", err)
	}
}

func TestFrameCheckerRejectsMalformedPackets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		v       byte // 0: before CONNECT
		pkt     []byte
		wantMsg string
	}{
		{"truncated v5 SUBSCRIBE (mochi crash)", 5, crashSubscribe, "truncated"},
		{"empty-filter v5 SUBSCRIBE (comqtt CVE)", 5, crashSubscribeEmpty, "truncated"},
		{"256 MB remaining length", 0, []byte{0x10, 0xFF, 0xFF, 0xFF, 0x7F}, "packet too large"},
		{"5-byte remaining length", 0, []byte{0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, "longer than 4 bytes"},
		{"publish before CONNECT", 0, packet(0x30, cat(str("a"), []byte("1"))), "before CONNECT"},
		{"second CONNECT", 4, connect(4, "x"), "second CONNECT"},
		{"QoS 3 publish", 4, packet(0x36, cat(str("a"), []byte{0, 1})), "QoS 3"},
		{"zero-length topic", 4, packet(0x30, cat(str(""), []byte("1"))), "is empty"},
		{"wildcard in publish topic", 4, packet(0x30, cat(str("fieldgate/+/t"), []byte("1"))), "wildcard"},
		{"invalid UTF-8 topic", 4, packet(0x30, cat(str("a/\xff\xfe"), []byte("1"))), "not UTF-8"},
		{"NUL in topic", 4, packet(0x30, cat(str("a\x00b"), []byte("1"))), "not UTF-8"},
		{"invalid UTF-8 client id", 0, connect(4, "dev\xff"), "client id"},
		{"qos1 publish id 0", 4, packet(0x32, cat(str("a"), []byte{0, 0})), "identifier 0"},
		{"subscribe flags", 4, packet(0x80, cat([]byte{0, 1}, str("a"), []byte{0})), "flags"},
		{"subscribe without filter", 4, packet(0x82, []byte{0, 1}), "without a topic filter"},
		{"subscribe bad filter", 4, packet(0x82, cat([]byte{0, 1}, str("a/#/b"), []byte{0})), "not valid"},
		{"subscribe qos 3", 4, packet(0x82, cat([]byte{0, 1}, str("a"), []byte{3})), "options"},
		{"v5 topic alias", 5, packet(0x30, cat(str("a"), []byte{3, 0x23, 0, 1}, []byte("1"))), "topic alias above the maximum"},
		{"v5 unknown property", 5, packet(0x30, cat(str("a"), []byte{2, 0x7F, 0}, []byte("1"))), "unknown"},
		{"v5 property overruns", 5, packet(0x30, cat(str("a"), []byte{9, 0x26, 0, 5, 'k'})), "properties of 9 bytes"},
		{"will on a non-UTF-8 topic", 0, packet(0x10, cat(str("MQTT"), []byte{4, 0x06, 0, 60}, str("d"), str("\xff"), str("bye"))), "will topic"},
		{"unknown protocol", 0, packet(0x10, cat(str("HTTP"), []byte{4, 2, 0, 60}, str("d"))), "protocol"},
		{"server-only packet", 4, []byte{0x90, 0x03, 0, 1, 0}, "not one a client sends"},
		{"trailing garbage", 4, packet(0xC0, []byte{1}), "unexpected bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := &frameChecker{maxSize: 16 << 10}
			if tc.v != 0 {
				fc = connected(t, tc.v)
			}
			err := checkOne(fc, tc.pkt)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("got %v, want ErrMalformed mentioning %q", err, tc.wantMsg)
			}
		})
	}
}

func TestFrameCheckerBoundsKeepalive(t *testing.T) {
	fc := &frameChecker{maxSize: 1024, maxKeep: 600}
	pkt := packet(0x10, cat(str("MQTT"), []byte{4, 0x02, 0, 0}, str("d"))) // keepalive 0
	if err := checkOne(fc, pkt); err != nil {
		t.Fatal(err)
	}
	if ka := binary.BigEndian.Uint16(pkt[10:12]); ka != 600 {
		t.Errorf("keepalive %d after the check, want 600", ka)
	}
}

// FuzzFrameChecker feeds arbitrary packets after a valid CONNECT. The
// property: whatever the checker accepts, mochi's own decoder parses without
// panicking — the checker is what stands between a socket and a crash.
func FuzzFrameChecker(f *testing.F) {
	f.Add(byte(5), crashSubscribe)
	f.Add(byte(5), crashSubscribeEmpty)
	f.Add(byte(4), packet(0x32, cat(str("fieldgate/dev1/t"), []byte{0, 7}, []byte("21.5"))))
	f.Add(byte(5), packet(0x82, cat([]byte{0, 1, 0}, str("a/#"), []byte{0x11})))
	f.Add(byte(5), packet(0xA2, cat([]byte{0, 1, 0}, str("a"))))
	f.Add(byte(5), []byte{0xE0, 0x02, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, v byte, pkt []byte) {
		if v != 4 {
			v = 5
		}
		fc := &frameChecker{maxSize: 16 << 10}
		if err := checkOne(fc, connect(v, "d")); err != nil {
			t.Fatal(err)
		}
		hdr, rem, need, err := fc.header(pkt)
		if err != nil || need > 0 || len(pkt) < hdr+rem {
			return
		}
		pkt = pkt[:hdr+rem]
		if fc.check(pkt, hdr) != nil {
			return
		}
		decodeLikeMochi(t, v, pkt, hdr)
	})
}

// decodeLikeMochi decodes an accepted packet the way mochi's client reader
// does; a panic fails the fuzz test.
func decodeLikeMochi(t *testing.T, v byte, pkt []byte, hdr int) {
	pk := packets.Packet{ProtocolVersion: v}
	if err := pk.FixedHeader.Decode(pkt[0]); err != nil {
		return
	}
	pk.FixedHeader.Remaining = len(pkt) - hdr
	body := append([]byte(nil), pkt[hdr:]...)
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("mochi panics on an accepted packet % x: %v", pkt, p)
		}
	}()
	switch pk.FixedHeader.Type {
	case packets.Publish:
		_ = pk.PublishDecode(body)
	case packets.Puback:
		_ = pk.PubackDecode(body)
	case packets.Pubrec:
		_ = pk.PubrecDecode(body)
	case packets.Pubrel:
		_ = pk.PubrelDecode(body)
	case packets.Pubcomp:
		_ = pk.PubcompDecode(body)
	case packets.Subscribe:
		_ = pk.SubscribeDecode(body)
	case packets.Unsubscribe:
		_ = pk.UnsubscribeDecode(body)
	case packets.Pingreq:
		_ = pk.PingreqDecode(body)
	case packets.Disconnect:
		_ = pk.DisconnectDecode(body)
	case packets.Auth:
		_ = pk.AuthDecode(body)
	}
}
