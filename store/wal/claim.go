package wal

import "encoding/binary"

// claim is the seqs held by the head of a damaged frame at a segment's
// end: a frame that was synced, read back (and perhaps uploaded) and then
// rotted must never have its seqs given again. The head is not covered by
// a checksum of its own, so a write torn inside it leaves garbage there; a
// claim therefore only raises the seq the log ends at (ReplayInfo.Last),
// never hides a valid frame, and is void as soon as later frames or
// segment headers show it was never read back.
type claim struct {
	first, last uint64
	base        uint64 // the base of the process that wrote the frame
	void        bool
}

// claim records the head at the start of b, in segment s, if its seqs are
// plausible.
func (r *replayer) claim(s *segment, b []byte) {
	first, last := binary.BigEndian.Uint64(b[8:]), binary.BigEndian.Uint64(b[16:])
	if last < first || last-first >= maxSpan {
		return
	}
	r.claims = append(r.claims, claim{first: first, last: last, base: s.base})
}

// voidClaims voids the claims that a later frame or segment header
// contradicts: a valid frame holding seqs from first on (if not 0) means
// the claimed seqs were given again, so they were never read back; a
// segment whose writer began (at base, if not 0) after the claim's writer
// but below the claim's seqs replayed the log without finding them there.
func (r *replayer) voidClaims(first, base uint64) {
	for i := range r.claims {
		c := &r.claims[i]
		switch {
		case c.void:
		case first != 0 && first <= c.last:
			c.void = true
		case base != 0 && base > c.base && base < c.last:
			c.void = true
		}
	}
}

// claimed is the highest seq that a claim still holds.
func (r *replayer) claimed() uint64 {
	var top uint64
	for _, c := range r.claims {
		if !c.void {
			top = max(top, c.last)
		}
	}
	return top
}
