package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Sizes of the on-disk structures (see the package documentation).
const (
	headerSize = 40
	frameHead  = 32
	// MaxPayload bounds one record's payload.
	MaxPayload = 16 << 20
	// maxSpan bounds the sequence numbers one record holds, so that a
	// forward scan for salvageable frames rejects implausible headers
	// before it computes a checksum.
	maxSpan = 1 << 24
)

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	magic      = [8]byte{'F', 'G', 'W', 'A', 'L', 0, 0, 2}
)

// ErrCorrupt reports a segment whose header is not a log segment's.
var ErrCorrupt = errors.New("wal: corrupt segment")

// salt is what a segment mixes into every frame's checksum: its number and
// the epoch drawn when the file was prepared for it. A frame's checksum is
// the CRC-32C of its bytes from offset 4 on, XORed with the CRC-32C of the
// salt (key): a frame left in a recycled file by its previous use, or
// written for another segment, does not check out under another salt. The
// XOR lets the writer checksum a frame before it knows which segment it
// will land in.
type salt struct{ n, epoch uint64 }

// key is the salt's contribution to every frame checksum.
func (s salt) key() uint32 {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:], s.n)
	binary.BigEndian.PutUint64(b[8:], s.epoch)
	return crc32.Checksum(b[:], castagnoli)
}

// appendHeader appends the header of a segment salted with s to dst,
// written by a process that began after seq base.
func appendHeader(dst []byte, s salt, base uint64) []byte {
	start := len(dst)
	dst = append(dst, magic[:]...)
	dst = binary.BigEndian.AppendUint64(dst, s.n)
	dst = binary.BigEndian.AppendUint64(dst, s.epoch)
	dst = binary.BigEndian.AppendUint64(dst, base)
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
	return append(dst, 0, 0, 0, 0)
}

// header is a decoded segment header.
type header struct {
	salt
	// base is the last seq the log held when the process that wrote the
	// segment began: the durable seqs its frames record speak only of the
	// seqs above it, which that process wrote.
	base   uint64
	legacy bool // a version 1 segment: unsalted 24-byte frame heads
}

// checkHeader decodes a segment header.
func checkHeader(b []byte) (header, error) {
	if len(b) < headerSize {
		return header{}, fmt.Errorf("%w: short header", ErrCorrupt)
	}
	switch [8]byte(b[:8]) {
	case magic:
		if crc32.Checksum(b[:32], castagnoli) != binary.BigEndian.Uint32(b[32:]) {
			return header{}, fmt.Errorf("%w: header checksum", ErrCorrupt)
		}
		return header{salt: salt{binary.BigEndian.Uint64(b[8:]), binary.BigEndian.Uint64(b[16:])}, base: binary.BigEndian.Uint64(b[24:])}, nil
	case magicV1:
		if crc32.Checksum(b[:16], castagnoli) != binary.BigEndian.Uint32(b[16:]) {
			return header{}, fmt.Errorf("%w: header checksum", ErrCorrupt)
		}
		return header{salt: salt{n: binary.BigEndian.Uint64(b[8:])}, legacy: true}, nil
	}
	return header{}, fmt.Errorf("%w: bad magic", ErrCorrupt)
}

// appendFrame appends a frame holding payload, records first to last, to
// dst, checksummed under key (0: to be salted later with saltFrame).
// durable is the highest seq a completed sync covered when the frame was
// written: replay tells a region that was synced and then damaged from one
// that a power cut caught before its sync.
func appendFrame(dst []byte, key uint32, first, last, durable uint64, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.BigEndian.AppendUint64(dst, first)
	dst = binary.BigEndian.AppendUint64(dst, last)
	dst = binary.BigEndian.AppendUint64(dst, durable)
	dst = append(dst, payload...)
	binary.BigEndian.PutUint32(dst[start:], crc32.Checksum(dst[start+4:], castagnoli)^key)
	return dst
}

// saltFrame salts the checksum of the frame at the start of b with key.
func saltFrame(b []byte, key uint32) {
	binary.BigEndian.PutUint32(b, binary.BigEndian.Uint32(b)^key)
}

// appendMark appends a mark: an empty frame that ends its segment. first
// to last, if not 0, are sequence numbers given to records that a failed
// write or sync left in an unknown state and that the mark voids: they were
// never acknowledged and are never read back.
func appendMark(dst []byte, key uint32, first, last uint64) []byte {
	return appendFrame(dst, key, first, last, 0, nil)
}

// frame is one decoded frame.
type frame struct {
	first, last uint64
	durable     uint64
	payload     []byte
	size        int  // bytes on disk, header included
	mark        bool // ends the segment; first..last (if set) were voided
}

// frameState says why parseFrame stopped.
type frameState int

const (
	frameOK    frameState = iota
	frameZero             // nothing was ever written here
	frameShort            // the frame runs past the data given
	frameBad              // torn, corrupt or stale
)

// parseFrame decodes the frame at the start of b, salted with key.
func parseFrame(b []byte, key uint32) (frame, frameState) {
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
	if crc32.Checksum(b[4:size], castagnoli)^key != binary.BigEndian.Uint32(b) {
		return frame{}, frameBad
	}
	f := frame{
		first:   binary.BigEndian.Uint64(b[8:]),
		last:    binary.BigEndian.Uint64(b[16:]),
		durable: binary.BigEndian.Uint64(b[24:]),
		payload: b[frameHead:size],
		size:    size,
	}
	if n == 0 {
		f.mark = true
		if (f.first == 0) != (f.last == 0) || f.last < f.first {
			return frame{}, frameBad
		}
		return f, frameOK
	}
	if f.first == 0 || f.last < f.first {
		return frame{}, frameBad
	}
	return f, frameOK
}

// plausible reports whether b starts with a frame head that could hold
// the records from expected on: a cheap test before a checksum, for the
// forward scan past damage.
func plausible(b []byte, expected uint64) bool {
	if len(b) < frameHead {
		return false
	}
	n := binary.BigEndian.Uint32(b[4:])
	first, last := binary.BigEndian.Uint64(b[8:]), binary.BigEndian.Uint64(b[16:])
	if n == 0 || int64(n) > int64(len(b)-frameHead) || first == 0 || last < first || last-first >= maxSpan {
		return false
	}
	return expected == 0 || (first >= expected && first-expected < 1<<40)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
