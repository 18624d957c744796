package wal

import (
	"encoding/binary"
	"hash/crc32"
)

// Version 1 of the format, written before frames were salted: a 32-byte
// header (magic, number, CRC of both, zeros) and 24-byte frame heads
// (CRC, length, first, last) whose checksum covers only the frame. A log
// left by an older fieldgate is replayed in it; nothing new is written in
// it.
var magicV1 = [8]byte{'F', 'G', 'W', 'A', 'L', 0, 0, 1}

const (
	headerSizeV1 = 32
	frameHeadV1  = 24
)

// parseFrameV1 decodes a version 1 frame at the start of b.
func parseFrameV1(b []byte) (frame, frameState) {
	if len(b) < frameHeadV1 {
		if allZero(b) {
			return frame{}, frameZero
		}
		return frame{}, frameShort
	}
	if allZero(b[:frameHeadV1]) {
		return frame{}, frameZero
	}
	n := binary.BigEndian.Uint32(b[4:])
	if n > MaxPayload {
		return frame{}, frameBad
	}
	size := frameHeadV1 + int(n)
	if len(b) < size {
		return frame{}, frameShort
	}
	if crc32.Checksum(b[4:size], castagnoli) != binary.BigEndian.Uint32(b) {
		return frame{}, frameBad
	}
	f := frame{first: binary.BigEndian.Uint64(b[8:]), last: binary.BigEndian.Uint64(b[16:]), payload: b[frameHeadV1:size], size: size}
	if f.first == 0 && f.last == 0 && n == 0 {
		f.mark = true // version 1's seal after a torn tail
		return f, frameOK
	}
	if f.first == 0 || f.last < f.first {
		return frame{}, frameBad
	}
	return f, frameOK
}
