package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Sizes of the on-disk structures (see the package documentation).
const (
	headerSize = 32
	frameHead  = 24
	// MaxPayload bounds one record's payload.
	MaxPayload = 16 << 20
)

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	magic      = [8]byte{'F', 'G', 'W', 'A', 'L', 0, 0, 1}
)

// ErrCorrupt reports a segment whose header is not a log segment's.
var ErrCorrupt = errors.New("wal: corrupt segment")

// appendHeader appends the header of segment number n to dst.
func appendHeader(dst []byte, n uint64) []byte {
	start := len(dst)
	dst = append(dst, magic[:]...)
	dst = binary.BigEndian.AppendUint64(dst, n)
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
	return append(dst, make([]byte, headerSize-20)...)
}

// checkHeader returns the segment number a header holds.
func checkHeader(b []byte) (uint64, error) {
	if len(b) < headerSize || [8]byte(b[:8]) != magic {
		return 0, fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	if crc32.Checksum(b[:16], castagnoli) != binary.BigEndian.Uint32(b[16:]) {
		return 0, fmt.Errorf("%w: header checksum", ErrCorrupt)
	}
	return binary.BigEndian.Uint64(b[8:]), nil
}

// appendFrame appends a frame holding payload, records first to last, to dst.
func appendFrame(dst []byte, first, last uint64, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.BigEndian.AppendUint64(dst, first)
	dst = binary.BigEndian.AppendUint64(dst, last)
	dst = append(dst, payload...)
	binary.BigEndian.PutUint32(dst[start:], crc32.Checksum(dst[start+4:], castagnoli))
	return dst
}

// sealFrame is an empty frame that marks where a torn tail was cut.
func sealFrame() []byte { return appendFrame(nil, 0, 0, nil) }

// frame is one decoded frame.
type frame struct {
	first, last uint64
	payload     []byte
	size        int // bytes on disk, header included
	seal        bool
}

// frameState says why parseFrame stopped.
type frameState int

const (
	frameOK    frameState = iota
	frameZero             // nothing was ever written here
	frameShort            // the frame runs past the data given
	frameBad              // torn, corrupt or stale
)

// parseFrame decodes the frame at the start of b.
func parseFrame(b []byte) (frame, frameState) {
	if len(b) < frameHead {
		if allZero(b) {
			return frame{}, frameZero
		}
		return frame{}, frameShort
	}
	if allZero(b[:frameHead]) {
		return frame{}, frameZero
	}
	n := binary.BigEndian.Uint32(b[4:])
	if n > MaxPayload {
		return frame{}, frameBad
	}
	size := frameHead + int(n)
	if len(b) < size {
		return frame{}, frameShort
	}
	if crc32.Checksum(b[4:size], castagnoli) != binary.BigEndian.Uint32(b) {
		return frame{}, frameBad
	}
	f := frame{
		first:   binary.BigEndian.Uint64(b[8:]),
		last:    binary.BigEndian.Uint64(b[16:]),
		payload: b[frameHead:size],
		size:    size,
	}
	if f.first == 0 && f.last == 0 && n == 0 {
		f.seal = true
		return f, frameOK
	}
	if f.first == 0 || f.last < f.first {
		return frame{}, frameBad
	}
	return f, frameOK
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
