package store

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Clock says whether a reading's time came from a synchronised clock.
type Clock uint8

const (
	// ClockSynced marks a reading taken while the system clock was set.
	ClockSynced Clock = iota
	// ClockUnsynced marks a reading taken before the clock was synchronised
	// (a Pi without RTC after a boot with no network): its time may be wrong.
	ClockUnsynced
)

// String returns the clock state as written on every interface.
func (c Clock) String() string {
	if c == ClockUnsynced {
		return "unsynced"
	}
	return "synced"
}

// Stamp dates a reading taken now: its wall time, whether the clock was
// synchronised, and while it is not, the time since boot that lets the store
// repair the reading later (Reading.Mono). clock.Tracker.Stamp is one.
type Stamp func() (wall time.Time, clock Clock, mono time.Duration)

// Trusted returns a Stamp that takes now as synchronised: the default where
// no clock tracker is given (tests, tools).
func Trusted(now func() time.Time) Stamp {
	return func() (time.Time, Clock, time.Duration) { return now(), ClockSynced, 0 }
}

// Reading is one measured value of one quantity from one source.
type Reading struct {
	// Seq is the gateway-local sequence number, assigned at commit. It is
	// strictly increasing and never reused, also across restarts.
	Seq uint64
	// Source is "i2c1-0x44" for a local sensor or the device id of an MQTT node.
	Source string
	// Quantity is what was measured: "temperature", "humidity", "co2", …
	Quantity string
	// Value is the measured value in Unit.
	Value float64
	// Unit is a SenML unit name (RFC 8428): "Cel", "%RH", "Pa", "ppm".
	Unit string
	// Time is when the value was measured.
	Time time.Time
	// Clock says whether Time came from a synchronised clock.
	Clock Clock
	// Mono is, for an unsynced reading, the time since boot when it was
	// taken: the store keeps it until the clock syncs and the reading's time
	// can be repaired (RepairClock). Zero when unknown; never read back.
	Mono time.Duration
}

// Limits on the strings of a reading, so that one bad publisher cannot bloat
// the store or its index keys.
const (
	MaxSourceLen   = 128
	MaxQuantityLen = 64
	MaxUnitLen     = 16
)

// MinTime and MaxTime bound the times the store can hold (nanoseconds
// since 1970 in 64 bits: 1677-09-21 to 2262-04-11).
var (
	MinTime = time.Unix(0, math.MinInt64).UTC()
	MaxTime = time.Unix(0, math.MaxInt64).UTC()
)

// Validate reports why r cannot be stored, or nil.
func (r *Reading) Validate() error {
	switch {
	case r.Source == "" || len(r.Source) > MaxSourceLen:
		return fmt.Errorf("%w: source must be 1 to %d bytes, got %d", ErrInvalidReading, MaxSourceLen, len(r.Source))
	case r.Quantity == "" || len(r.Quantity) > MaxQuantityLen:
		return fmt.Errorf("%w: quantity must be 1 to %d bytes, got %d", ErrInvalidReading, MaxQuantityLen, len(r.Quantity))
	case len(r.Unit) > MaxUnitLen:
		return fmt.Errorf("%w: unit longer than %d bytes", ErrInvalidReading, MaxUnitLen)
	case !printable(r.Source) || !printable(r.Quantity) || !printable(r.Unit):
		return fmt.Errorf("%w: source, quantity and unit must be printable UTF-8", ErrInvalidReading)
	case math.IsNaN(r.Value) || math.IsInf(r.Value, 0):
		return fmt.Errorf("%w: value %v is not a finite number", ErrInvalidReading, r.Value)
	case r.Time.IsZero():
		return fmt.Errorf("%w: time is missing", ErrInvalidReading)
	case r.Time.Before(MinTime) || r.Time.After(MaxTime):
		return fmt.Errorf("%w: time %s is outside %d to %d", ErrInvalidReading, r.Time.UTC().Format(time.RFC3339), MinTime.Year(), MaxTime.Year())
	case r.Clock > ClockUnsynced:
		return fmt.Errorf("%w: unknown clock state %d", ErrInvalidReading, r.Clock)
	}
	return nil
}

// printable reports whether s is valid UTF-8 without control characters
// (the series key uses NUL as its separator).
func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// readingFormat is the first byte of every encoded reading, so that a later
// schema can add fields without rewriting the file.
const readingFormat = 1

// encodeReading appends the stored form of r, whose series id is sid, to dst.
// Source and quantity are interned in the series bucket, so a reading costs
// about 24 bytes plus its unit.
func encodeReading(dst []byte, sid uint32, r *Reading) []byte {
	dst = append(dst, readingFormat, byte(r.Clock))
	dst = binary.AppendUvarint(dst, uint64(sid))
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.Time.UnixNano()))
	dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(r.Value))
	dst = binary.AppendUvarint(dst, uint64(len(r.Unit)))
	return append(dst, r.Unit...)
}

// decodeReading parses a stored reading. It returns the series id, which the
// caller resolves to source and quantity. Unit is copied out of b, which
// belongs to a bbolt transaction.
func decodeReading(b []byte, r *Reading) (sid uint32, err error) {
	if len(b) < 2 || b[0] != readingFormat {
		return 0, fmt.Errorf("store: reading record: unknown format")
	}
	clock := Clock(b[1])
	if clock > ClockUnsynced {
		return 0, fmt.Errorf("store: reading record: bad clock state %d", b[1])
	}
	b = b[2:]
	id, n := binary.Uvarint(b)
	if n <= 0 || id > math.MaxUint32 {
		return 0, fmt.Errorf("store: reading record: bad series id")
	}
	b = b[n:]
	if len(b) < 16 {
		return 0, fmt.Errorf("store: reading record: truncated")
	}
	ns := int64(binary.BigEndian.Uint64(b))
	val := math.Float64frombits(binary.BigEndian.Uint64(b[8:]))
	b = b[16:]
	ul, n := binary.Uvarint(b)
	if n <= 0 || ul > MaxUnitLen || uint64(len(b)-n) != ul {
		return 0, fmt.Errorf("store: reading record: bad unit")
	}
	r.Clock = clock
	r.Time = time.Unix(0, ns).UTC()
	r.Value = val
	r.Unit = string(b[n:])
	return uint32(id), nil
}

// seqKey is the 8-byte big-endian key of a sequence number.
func seqKey(seq uint64) []byte { return appendSeqKey(make([]byte, 0, 8), seq) }

// appendSeqKey appends seqKey(seq) to dst.
func appendSeqKey(dst []byte, seq uint64) []byte { return binary.BigEndian.AppendUint64(dst, seq) }

// timeKey maps a time to a uint64 whose unsigned order is the time order,
// also for times before 1970.
func timeKey(t time.Time) uint64 {
	return uint64(t.UnixNano()) ^ (1 << 63)
}

// indexKey is series id | time | seq: one series' readings in time order.
func indexKey(sid uint32, t time.Time, seq uint64) []byte {
	return appendIndexKey(make([]byte, 0, 20), sid, t, seq)
}

// appendIndexKey appends indexKey(sid, t, seq) to dst.
func appendIndexKey(dst []byte, sid uint32, t time.Time, seq uint64) []byte {
	dst = binary.BigEndian.AppendUint32(dst, sid)
	dst = binary.BigEndian.AppendUint64(dst, timeKey(t))
	return binary.BigEndian.AppendUint64(dst, seq)
}

// indexValue holds what a series scan needs without visiting the reading.
func indexValue(r *Reading) []byte { return appendIndexValue(make([]byte, 0, 9), r) }

// appendIndexValue appends indexValue(r) to dst.
func appendIndexValue(dst []byte, r *Reading) []byte {
	return append(binary.BigEndian.AppendUint64(dst, math.Float64bits(r.Value)), byte(r.Clock))
}

// maxRecordLen bounds what checkpointing one reading appends: its seq key,
// record (format, clock, series id, time, value, unit), index key and
// value, and a clock-repair entry.
func maxRecordLen(r *Reading) int {
	return 8 + 2 + binary.MaxVarintLen32 + 16 + binary.MaxVarintLen16 + len(r.Unit) + 20 + 9 + 16
}

// carve returns b[from:], capped, so that appending to b never writes into
// it: b is an arena whose pieces a bbolt transaction holds until it ends.
func carve(b []byte, from int) []byte { return b[from:len(b):len(b)] }
