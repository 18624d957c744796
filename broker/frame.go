package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrMalformed marks a control packet that breaks the MQTT specification.
// mochi v2.7.9 panics on some such packets without recovering (a truncated
// MQTT 5 SUBSCRIBE kills the process), so every packet is checked here,
// whole, before mochi sees a byte of it.
var ErrMalformed = errors.New("malformed MQTT packet")

// ErrTooLarge marks a packet over the size limit; it is also ErrMalformed.
var ErrTooLarge = fmt.Errorf("%w: packet too large", ErrMalformed)

// errTopicAlias marks a topic alias, which fieldgate offers none of (its
// CONNACK says Topic Alias Maximum 0); it is also ErrMalformed.
var errTopicAlias = fmt.Errorf("%w: topic alias above the maximum (0)", ErrMalformed)

// Packet types (MQTT 5 §2.1.2).
const (
	pConnect     = 1
	pPublish     = 3
	pPuback      = 4
	pPubrec      = 5
	pPubrel      = 6
	pPubcomp     = 7
	pSubscribe   = 8
	pUnsubscribe = 10
	pPingreq     = 12
	pDisconnect  = 14
	pAuth        = 15
)

// frameChecker validates the packets a client sends, in order. It is not
// safe for concurrent use; one belongs to one connection.
type frameChecker struct {
	maxSize   int    // largest remaining length accepted
	maxKeep   uint16 // keepalive bound, written into the CONNECT (0: none)
	keepSet   bool   // the CONNECT's keepalive was replaced by maxKeep
	version   byte   // protocol level from CONNECT: 3, 4 or 5
	connected bool
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// header parses a fixed header from the start of b. It returns the header
// length and the remaining length, or need > 0 when b is too short to tell.
// It rejects what can be rejected from the header alone — before the body
// is buffered, so an announced 256 MB packet costs nothing.
func (fc *frameChecker) header(b []byte) (hdr, rem, need int, err error) {
	if len(b) < 2 {
		return 0, 0, 2 - len(b), nil
	}
	typ, flags := b[0]>>4, b[0]&0x0F
	if err := fc.checkType(typ, flags); err != nil {
		return 0, 0, 0, err
	}
	mult := 1
	for i := 1; ; i++ {
		if i > 4 {
			return 0, 0, 0, malformed("remaining length longer than 4 bytes")
		}
		if i >= len(b) {
			return 0, 0, 1, nil
		}
		rem += int(b[i]&0x7F) * mult
		if b[i]&0x80 == 0 {
			hdr = i + 1
			break
		}
		mult *= 128
	}
	if rem > fc.maxSize {
		return 0, 0, 0, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, rem, fc.maxSize)
	}
	return hdr, rem, 0, nil
}

// checkType enforces the packet types a client may send, their fixed flags,
// and that CONNECT comes first and once.
func (fc *frameChecker) checkType(typ, flags byte) error {
	if !fc.connected && typ != pConnect {
		return malformed("packet type %d before CONNECT", typ)
	}
	switch typ {
	case pConnect:
		if fc.connected {
			return malformed("second CONNECT")
		}
	case pPublish:
		if (flags>>1)&3 == 3 {
			return malformed("PUBLISH with QoS 3")
		}
		return nil
	case pPubrel, pSubscribe, pUnsubscribe:
		if flags != 0x2 {
			return malformed("packet type %d with flags %#x, want 0x2", typ, flags)
		}
		return nil
	case pPuback, pPubrec, pPubcomp, pPingreq, pDisconnect:
	case pAuth:
		if fc.version != 5 {
			return malformed("AUTH before MQTT 5")
		}
	default:
		return malformed("packet type %d is not one a client sends", typ)
	}
	if flags != 0 {
		return malformed("packet type %d with flags %#x, want 0", typ, flags)
	}
	return nil
}

// check validates one whole packet: its fixed header and body. It may
// rewrite the CONNECT's keepalive in place to enforce the bound.
func (fc *frameChecker) check(pkt []byte, hdr int) error {
	typ, flags := pkt[0]>>4, pkt[0]&0x0F
	r := &reader{b: pkt[hdr:]}
	switch typ {
	case pConnect:
		return fc.checkConnect(r, pkt[hdr:])
	case pPublish:
		return fc.checkPublish(r, (flags>>1)&3)
	case pSubscribe:
		return fc.checkSubscribe(r)
	case pUnsubscribe:
		return fc.checkUnsubscribe(r)
	case pPuback, pPubrec, pPubrel, pPubcomp:
		if r.uint16() == 0 && r.err == nil {
			return malformed("packet identifier 0")
		}
		if fc.version == 5 && len(r.b) > 0 {
			r.byte() // reason code
			fc.properties(r)
		}
	case pPingreq:
	case pDisconnect, pAuth:
		if fc.version == 5 && len(r.b) > 0 {
			r.byte()
			fc.properties(r)
		}
	}
	return r.done()
}

func (fc *frameChecker) checkConnect(r *reader, body []byte) error {
	name := r.string()
	level := r.byte()
	if r.err != nil {
		return r.err
	}
	switch {
	case name == "MQTT" && (level == 4 || level == 5):
	case name == "MQIsdp" && level == 3:
	default:
		return malformed("protocol %q level %d is not MQTT 3.1, 3.1.1 or 5", name, level)
	}
	fc.version = level
	flags := r.byte()
	if flags&0x01 != 0 {
		return malformed("CONNECT reserved flag set")
	}
	keepAt := len(body) - len(r.b)
	keep := r.uint16()
	if r.err == nil && fc.maxKeep > 0 && (keep == 0 || keep > fc.maxKeep) {
		// A client that would hold an idle socket forever, or for hours,
		// gets the bound: mochi drops it after 1.5 × keepalive of silence.
		binary.BigEndian.PutUint16(body[keepAt:], fc.maxKeep)
		fc.keepSet = true
	}
	if level == 5 {
		fc.properties(r)
	}
	if id := r.string(); r.err == nil && !validName(id, true) {
		return malformed("client id is not valid UTF-8")
	}
	if flags&0x04 != 0 { // will
		if (flags>>3)&3 == 3 {
			return malformed("will QoS 3")
		}
		if level == 5 {
			fc.properties(r)
		}
		if t := r.binary(); r.err == nil && !validTopic(t) {
			return malformed("will topic %q is not a valid topic", t)
		}
		r.binary()
	} else if flags&0x38 != 0 {
		return malformed("will QoS or retain without a will")
	}
	if flags&0x80 != 0 {
		if u := r.string(); r.err == nil && !validName(u, true) {
			return malformed("username is not valid UTF-8")
		}
	}
	if flags&0x40 != 0 {
		r.binary()
	}
	if err := r.done(); err != nil {
		return err
	}
	fc.connected = true
	return nil
}

func (fc *frameChecker) checkPublish(r *reader, qos byte) error {
	topic := r.binary()
	if r.err == nil && !validTopic(topic) {
		return malformed("publish topic %q is empty, has a wildcard or is not UTF-8", truncate(string(topic)))
	}
	if r.err == nil && len(topic) >= 4 && bytes.EqualFold(topic[:4], []byte("$SYS")) {
		// mochi drops these without a PUBACK or a word, and a QoS 1
		// client would wait for ever: closing is the answer both
		// protocol versions understand.
		return malformed("publish to %q: $SYS topics are the broker's own", truncate(string(topic)))
	}
	if qos > 0 && r.uint16() == 0 && r.err == nil {
		return malformed("QoS %d publish with packet identifier 0", qos)
	}
	if fc.version == 5 {
		fc.properties(r)
	}
	r.b = nil // the rest is payload
	return r.err
}

func (fc *frameChecker) checkSubscribe(r *reader) error {
	if r.uint16() == 0 && r.err == nil {
		return malformed("SUBSCRIBE with packet identifier 0")
	}
	if fc.version == 5 {
		fc.properties(r)
	}
	n := 0
	for r.err == nil && len(r.b) > 0 {
		f := r.string()
		opts := r.byte() // the byte mochi reads without a bounds check
		if r.err != nil {
			break
		}
		if !validFilter(f) {
			return malformed("topic filter %q is not valid", truncate(f))
		}
		if opts&3 == 3 || opts&0xC0 != 0 || (fc.version < 5 && opts&0xFC != 0) || (opts>>4)&3 == 3 {
			return malformed("subscription options %#x are not valid", opts)
		}
		n++
	}
	if r.err == nil && n == 0 {
		return malformed("SUBSCRIBE without a topic filter")
	}
	return r.err
}

func (fc *frameChecker) checkUnsubscribe(r *reader) error {
	if r.uint16() == 0 && r.err == nil {
		return malformed("UNSUBSCRIBE with packet identifier 0")
	}
	if fc.version == 5 {
		fc.properties(r)
	}
	n := 0
	for r.err == nil && len(r.b) > 0 {
		if f := r.string(); r.err == nil && !validFilter(f) {
			return malformed("topic filter %q is not valid", truncate(f))
		}
		n++
	}
	if r.err == nil && n == 0 {
		return malformed("UNSUBSCRIBE without a topic filter")
	}
	return r.err
}

// Property value types (MQTT 5 §2.2.2.2).
const (
	tByte = iota + 1
	tUint16
	tUint32
	tVarint
	tString
	tBinary
	tPair
)

var propertyTypes = map[uint64]int{
	0x01: tByte, 0x02: tUint32, 0x03: tString, 0x08: tString, 0x09: tBinary, 0x0B: tVarint,
	0x11: tUint32, 0x12: tString, 0x13: tUint16, 0x15: tString, 0x16: tBinary, 0x17: tByte,
	0x18: tUint32, 0x19: tByte, 0x1A: tString, 0x1C: tString, 0x1F: tString, 0x21: tUint16,
	0x22: tUint16, 0x24: tByte, 0x25: tByte, 0x26: tPair, 0x27: tUint32, 0x28: tByte,
	0x29: tByte, 0x2A: tByte,
	// 0x23 (topic alias) is left out on purpose: fieldgate offers none, so
	// a client that sends one is in error.
}

// properties checks an MQTT 5 property block: its length and every
// property's identifier and value.
func (fc *frameChecker) properties(r *reader) {
	n := r.varint()
	if r.err != nil {
		return
	}
	if n > uint64(len(r.b)) {
		r.err = malformed("properties of %d bytes in %d", n, len(r.b))
		return
	}
	p := &reader{b: r.b[:n]}
	r.b = r.b[n:]
	for p.err == nil && len(p.b) > 0 {
		id := p.varint()
		t, ok := propertyTypes[id]
		if id == 0x23 && p.err == nil {
			r.err = errTopicAlias
			return
		}
		if !ok && p.err == nil {
			r.err = malformed("property %#x is unknown or not allowed", id)
			return
		}
		switch t {
		case tByte:
			p.byte()
		case tUint16:
			p.uint16()
		case tUint32:
			p.take(4)
		case tVarint:
			p.varint()
		case tString:
			if s := p.string(); p.err == nil && !utf8.ValidString(s) {
				p.err = malformed("property %#x is not UTF-8", id)
			}
		case tBinary:
			p.binary()
		case tPair:
			p.string()
			p.string()
		}
	}
	if p.err != nil {
		r.err = p.err
	}
}

// validName: valid UTF-8 with no NUL or other control character.
func validName(s string, allowEmpty bool) bool {
	if s == "" {
		return allowEmpty
	}
	return utf8.ValidString(s) && !strings.ContainsFunc(s, isControl)
}

func isControl(c rune) bool { return c < 0x20 || c == 0x7F }

// validTopic is a topic a message may be published to: not empty, no
// wildcards, valid UTF-8 without control characters. It reads the packet's
// bytes: a publish's topic is checked without a copy.
func validTopic(t []byte) bool {
	return len(t) > 0 && utf8.Valid(t) && !bytes.ContainsFunc(t, isControl) && !bytes.ContainsAny(t, "+#")
}

// validFilter is a subscription filter: '#' only last and alone in its
// level, '+' alone in its level.
func validFilter(f string) bool {
	if !validName(f, false) {
		return false
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return false
		}
		if strings.Contains(l, "+") && l != "+" {
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// reader reads MQTT's encodings off a byte slice; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = malformed("truncated: need %d bytes, %d left", n, len(r.b))
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) uint16() uint16 {
	if v := r.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *reader) varint() uint64 {
	var v uint64
	for i := 0; i < 4; i++ {
		b := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint64(b&0x7F) << (7 * i)
		if b&0x80 == 0 {
			return v
		}
	}
	r.err = malformed("variable byte integer longer than 4 bytes")
	return 0
}

func (r *reader) binary() []byte { return r.take(int(r.uint16())) }

func (r *reader) string() string { return string(r.binary()) }

// done reports an error, or bytes left over after the last field.
func (r *reader) done() error {
	if r.err == nil && len(r.b) > 0 {
		return malformed("%d unexpected bytes at the end of the packet", len(r.b))
	}
	return r.err
}
