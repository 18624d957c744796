package store

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// logFormat is the first byte of every log record's payload, so that a
// later version can change the encoding.
const logFormat = 1

// encodeLogRecord appends the log form of rs (consecutive seqs) to dst. A
// log record is self-contained — source and quantity are spelled out, not
// interned — so replay needs nothing but the log:
//
//	format byte, then per reading:
//	source, quantity, unit (uvarint length + bytes), clock byte,
//	time (8 bytes, ns since the epoch), value (8 bytes), mono (uvarint ns)
func encodeLogRecord(dst []byte, rs []Reading) []byte {
	dst = append(dst, logFormat)
	for i := range rs {
		r := &rs[i]
		dst = appendString(dst, r.Source)
		dst = appendString(dst, r.Quantity)
		dst = appendString(dst, r.Unit)
		dst = append(dst, byte(r.Clock))
		dst = binary.BigEndian.AppendUint64(dst, uint64(r.Time.UnixNano()))
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(r.Value))
		dst = binary.AppendUvarint(dst, uint64(max(r.Mono, 0)))
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// logRecordSize is an upper bound of r's share of an encoded log record.
func logRecordSize(r *Reading) int {
	return 3*binary.MaxVarintLen16 + len(r.Source) + len(r.Quantity) + len(r.Unit) + 1 + 16 + binary.MaxVarintLen64
}

// decodeLogRecord decodes the n readings of a record whose first seq is
// first, calling fn for each. intern returns a shared copy of a string, so
// the head holds one copy of each source, quantity and unit.
func decodeLogRecord(b []byte, first uint64, n int, intern func([]byte) string, fn func(Reading) error) error {
	if len(b) == 0 || b[0] != logFormat {
		return fmt.Errorf("store: log record %d: unknown format", first)
	}
	b = b[1:]
	for i := range n {
		var r Reading
		var ok bool
		var src, qty, unit []byte
		if src, b, ok = cutString(b, MaxSourceLen); !ok {
			return fmt.Errorf("store: log record %d: reading %d: bad source", first, i)
		}
		if qty, b, ok = cutString(b, MaxQuantityLen); !ok {
			return fmt.Errorf("store: log record %d: reading %d: bad quantity", first, i)
		}
		if unit, b, ok = cutString(b, MaxUnitLen); !ok || len(b) < 17 {
			return fmt.Errorf("store: log record %d: reading %d: truncated", first, i)
		}
		r.Clock = Clock(b[0])
		r.Time = time.Unix(0, int64(binary.BigEndian.Uint64(b[1:]))).UTC()
		r.Value = math.Float64frombits(binary.BigEndian.Uint64(b[9:]))
		mono, k := binary.Uvarint(b[17:])
		if k <= 0 || mono > math.MaxInt64 {
			return fmt.Errorf("store: log record %d: reading %d: bad mono time", first, i)
		}
		b = b[17+k:]
		r.Seq, r.Mono = first+uint64(i), time.Duration(mono)
		r.Source, r.Quantity, r.Unit = intern(src), intern(qty), intern(unit)
		if err := r.Validate(); err != nil {
			return fmt.Errorf("store: log record %d: %w", first, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("store: log record %d: %d trailing bytes", first, len(b))
	}
	return nil
}

// cutString takes a length-prefixed string of at most limit bytes off b.
func cutString(b []byte, limit int) (s, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(limit) || uint64(len(b)-k) < n {
		return nil, nil, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}
