package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// ErrBadRecord, wrapped by the error of Replay's callback, says that a
// record whose checksum is right does not decode: it is reported and
// skipped as damage, and replay goes on.
var ErrBadRecord = errors.New("wal: record does not decode")

// Kinds of Damage.
const (
	// DamageTorn is a write that a power cut caught before the sync that
	// would have covered it: its records were never acknowledged.
	DamageTorn = "torn"
	// DamageCorrupt is data that a sync had covered and that no longer
	// checks out: bit rot, or a card persisting pages out of order.
	DamageCorrupt = "corrupt"
	// DamageHeader is a segment whose header is unreadable.
	DamageHeader = "header"
	// DamageRecord is a record whose checksum is right but whose content
	// does not decode.
	DamageRecord = "record"
)

// maxDamage bounds the places ReplayInfo lists (all are counted).
const maxDamage = 64

// Damage is one place where replay found the log not as it was written.
type Damage struct {
	Kind    string
	Segment uint64
	File    string // the file's path when replay found it
	Offset  int64
	// First and Last bound the sequence numbers whose records were lost
	// there, where replay could tell (0 if not).
	First, Last uint64
}

// ReplayInfo says what Replay found.
type ReplayInfo struct {
	// Last is the highest sequence number of a valid record, voided by a
	// mark or claimed by the head of a damaged frame at a segment's end, or
	// the after argument if none is newer: the log never held a higher one.
	Last uint64
	// Records and Bytes count the records handed to the callback.
	Records int
	Bytes   int64
	// Torn counts places where a write was cut short by a power cut before
	// its sync: never acknowledged, so nothing acknowledged was lost.
	Torn int
	// Corrupt counts places where synced data was damaged: corrupt frames,
	// unreadable segment headers, records that do not decode. Their files
	// are quarantined, not recycled.
	Corrupt int
	// Salvaged counts the records read back past damage.
	Salvaged int
	// Gaps counts places where sequence numbers jump between segments.
	Gaps int
	// Damage lists the places (the first 64) where the log was torn or
	// corrupt.
	Damage []Damage
}

// Replay reads the log and calls fn, in order, for every record holding a
// sequence number above after; payload is valid only during the call.
//
// It trusts only the device: every segment is synced (a process that died
// may have left written pages in the kernel's cache, which a power cut
// would still take back) and dropped from the page cache before it is
// read. A torn or damaged region does not end the replay: every valid
// frame after it is read back. A region is torn if no later frame records
// that a sync had covered it, corrupt otherwise (see Damage). Replay then
// positions the log for writing — in a fresh segment unless the last one
// holds nothing but zeros — and starts the background preparation of
// spare segments. It must be called once, before Append.
func (l *Log) Replay(after uint64, fn func(first, last uint64, payload []byte) error) (ReplayInfo, error) {
	r := &replayer{l: l, fn: fn, after: after, info: ReplayInfo{Last: after}}
	kept := l.segs[:0]
	for _, s := range l.segs {
		keep, err := r.segment(s)
		if err != nil {
			_ = r.close(s) // the replay error is the one to report
			l.closeAll(kept)
			return r.info, err
		}
		if keep {
			kept = append(kept, s)
		}
	}
	l.segs = kept
	r.classify()
	r.info.Last = max(r.info.Last, r.claimed())
	l.base = r.info.Last
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.position(); err != nil {
		l.closeAll(l.segs)
		return r.info, err
	}
	l.replayed = true
	go l.preparer()
	l.wakePreparer()
	l.releaseLocked(after)
	return r.info, nil
}

// replayer is the state of one Replay.
type replayer struct {
	l     *Log
	fn    func(first, last uint64, payload []byte) error
	info  ReplayInfo
	buf   []byte
	after uint64 // Replay's argument: seqs up to it are checkpointed
	prev  uint64 // last seq of the previous valid frame or mark
	// claims are the seqs held by the heads of damaged frames at a
	// segment's end (see claim).
	claims []claim
	// headerLoss is the last damage listed for an unreadable header whose
	// segment gave up no record: the next segment's base says what it lost.
	headerLoss int
	// regions are the bad regions found so far, classified at the end by
	// the durable seqs later frames record (see header.base).
	regions []region
}

// region is a bad region: where frames stopped checking out, from seq
// expected on.
type region struct {
	seg      *segment
	offset   int64
	expected uint64
	lost     uint64 // the last seq lost there, if known
	durable  uint64 // the highest durable seq any later frame records
}

func (r *replayer) close(s *segment) error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// segment replays one segment and says whether it stays in the log.
func (r *replayer) segment(s *segment) (bool, error) {
	l := r.l
	name := segName(s.n)
	f, err := l.o.FS.Open(l.path(name))
	if err != nil {
		return false, fmt.Errorf("wal: open segment %d: %w", s.n, err)
	}
	s.f = f
	b, err := r.read(s)
	if err != nil {
		return false, err
	}
	h, herr := checkHeader(b)
	switch {
	case herr == nil && h.n != s.n:
		// Its header names another segment: a released file was being
		// reused when the power went, its data synced, its rename not. It
		// holds no record yet (a segment is used only once its name is
		// durable), so it goes back to the pool.
		_ = r.close(s) // nothing was read from it
		l.putBack(name)
		return false, nil
	case herr != nil:
		// Nothing but a failing card damages a header that was synced
		// before its file was named. Its frames are tried under the salt
		// its header bytes still hold.
		// Its base is unknown: its frames prove nothing synced.
		h = header{salt: salt{n: s.n}, base: math.MaxUint64}
		if len(b) >= 24 {
			h.epoch = binary.BigEndian.Uint64(b[16:])
		}
		r.damage(Damage{Kind: DamageHeader, Segment: s.n, File: l.path(name)})
		s.damaged, s.sealed = true, true
	}
	s.key, s.base = h.key(), h.base
	if herr == nil {
		r.lostBefore(s, h)
	}
	before := r.info.Records + r.info.Salvaged
	if err := r.frames(s, b, h); err != nil {
		return false, err
	}
	if herr != nil && r.info.Records+r.info.Salvaged == before {
		r.headerLoss = len(r.info.Damage) // the next segment's base may say what it held
		_ = r.close(s)                    // set aside below; nothing was read from it
		l.mu.Lock()
		qerr := l.quarantine(name, s.n)
		l.mu.Unlock()
		return false, qerr
	}
	if h.legacy {
		s.sealed = true // nothing new is written in the old format
	}
	return true, nil
}

// lostBefore checks what a segment's header says of the log before it: its
// base is the last seq the log held when the process that wrote it began,
// and that process's replay had synced everything it read. Seqs up to the
// base that this replay has not met were on the device and are gone — a
// bit flipped in a frame's head at the end of a segment, or a segment lost
// — unless a damaged frame claimed them or a checkpoint holds them. Either
// way the segment's frames begin above the base: a bad region at the end
// of an earlier segment lost nothing past it, and one in this segment
// lost seqs from base+1 on, which its later frames may prove synced.
func (r *replayer) lostBefore(s *segment, h header) {
	r.voidClaims(0, h.base)
	known := max(r.prev, r.claimed(), r.after)
	if h.legacy {
		return
	}
	if h.base <= known {
		for i := range r.regions {
			if rg := &r.regions[i]; rg.lost == 0 && rg.seg != s && rg.expected <= h.base {
				rg.lost = h.base // claimed seqs, and the process that wrote s gave none of them
			}
		}
		r.prev = max(r.prev, h.base)
		return
	}
	if k := r.headerLoss - 1; k >= 0 && k < len(r.info.Damage) && r.info.Damage[k].First == 0 {
		r.info.Damage[k].First, r.info.Damage[k].Last = known+1, h.base // what the unreadable segment held
	} else {
		r.damage(Damage{Kind: DamageCorrupt, Segment: s.n, File: r.l.path(segName(s.n)), Offset: 0, First: known + 1, Last: h.base})
		r.l.log.Error("wal: records a later process had replayed are gone from the log", "before_segment", s.n, "lost_from", known+1, "lost_to", h.base)
	}
	r.headerLoss = 0
	r.prev = h.base
	r.info.Last = max(r.info.Last, h.base)
}

// read syncs s, drops it from the page cache and reads it from the device.
func (r *replayer) read(s *segment) ([]byte, error) {
	if err := s.f.Sync(); err != nil {
		return nil, fmt.Errorf("wal: sync segment %d before replaying it: %w", s.n, err)
	}
	if err := s.f.DropCache(); err != nil {
		return nil, fmt.Errorf("wal: drop segment %d from the page cache: %w", s.n, err)
	}
	size, err := s.f.Size()
	if err != nil {
		return nil, fmt.Errorf("wal: segment %d: %w", s.n, err)
	}
	if int64(cap(r.buf)) < size {
		r.buf = make([]byte, size)
	}
	b := r.buf[:size]
	if n, err := s.f.ReadAt(b, 0); err != nil && (err != io.EOF || int64(n) != size) {
		return nil, fmt.Errorf("wal: read segment %d: %w", s.n, err)
	}
	return b, nil
}

// frames replays the frames of segment s, whose bytes are b.
func (r *replayer) frames(s *segment, b []byte, h header) error {
	s.size = headerSize
	if h.legacy {
		s.size = headerSizeV1
	}
	for int(s.size) < len(b) {
		var f frame
		var state frameState
		if h.legacy {
			f, state = parseFrameV1(b[s.size:])
		} else {
			f, state = parseFrame(b[s.size:], s.key)
		}
		if state == frameOK && f.mark {
			if f.last > 0 {
				r.prev = max(r.prev, f.last)
				r.info.Last = max(r.info.Last, f.last)
				s.last = max(s.last, f.last)
			}
			s.sealed = true
			break
		}
		if state == frameZero && allZero(b[s.size:]) {
			break // never written
		}
		if state != frameOK || (r.prev != 0 && f.first <= r.prev) {
			// Damage, a tear, or stale bytes: the next frame that checks
			// out, if any, is where reading goes on.
			s.sealed = true
			next := r.scan(b, s.size, h)
			if next < 0 {
				// The segment's end. Bytes left by the file's previous use
				// are not damage; a frame of ours cut short is.
				if state != frameZero && r.ours(b[s.size:], h) {
					r.regions = append(r.regions, region{seg: s, offset: s.size, expected: r.expected()})
					r.claim(s, b[s.size:])
				}
				break
			}
			f, _ = parseFrame(b[next:], s.key)
			r.regions = append(r.regions, region{seg: s, offset: s.size, expected: r.expected(), lost: f.first - 1})
			s.size = next
		}
		if err := r.record(s, f); err != nil {
			return err
		}
		s.size += int64(f.size)
	}
	s.syncedSize = s.size
	return nil
}

// scan looks for the next frame after offset off of b that checks out and
// continues the sequence, and returns its offset, or -1.
func (r *replayer) scan(b []byte, off int64, h header) int64 {
	if h.legacy {
		return -1 // version 1 frames carry no salt: nothing after damage can be trusted
	}
	for y := off + 1; y+frameHead <= int64(len(b)); y++ {
		if b[y] == 0 && b[y+1] == 0 && b[y+2] == 0 && b[y+3] == 0 {
			continue // a checksum is almost never zero: skip zeros fast
		}
		if !plausible(b[y:], r.prev+1) {
			continue
		}
		if f, state := parseFrame(b[y:], h.key()); state == frameOK && !f.mark {
			return y
		}
	}
	return -1
}

// ours reports whether b, where a segment's valid frames end, starts with
// the head of a frame that continues the sequence: a write cut short,
// rather than stale bytes from the file's previous use (older seqs). Before
// the first valid frame, the sequence continues at or below the
// checkpoint's next seq, and above the base of the process that wrote h's
// segment.
func (r *replayer) ours(b []byte, h header) bool {
	head := frameHead
	if h.legacy {
		head = frameHeadV1
	}
	if len(b) < head {
		return false
	}
	first := binary.BigEndian.Uint64(b[8:])
	if r.prev != 0 {
		return first == r.prev+1
	}
	return first > h.base && first <= r.after+1
}

// expected is the first seq that the next frame should hold, as far as
// the frames read so far and the checkpoint tell.
func (r *replayer) expected() uint64 { return max(r.prev, r.after) + 1 }

// record hands a valid frame to the callback.
func (r *replayer) record(s *segment, f frame) error {
	open := false
	for i := range r.regions {
		rg := &r.regions[i]
		if s.base < rg.expected { // the seqs the frame's durable speaks of
			rg.durable = max(rg.durable, f.durable)
		}
		if rg.lost == 0 && rg.seg != s {
			rg.lost, open = f.first-1, true // a region at the end of an earlier segment
		}
	}
	if !open && r.prev != 0 && f.first > r.prev+1 && (s.size == headerSize || s.size == headerSizeV1) {
		r.info.Gaps++
		r.l.log.Warn("wal: sequence gap between segments", "segment", s.n, "missing_from", r.prev+1, "missing_to", f.first-1)
	}
	salvaged := len(r.regions) > 0
	r.voidClaims(f.first, 0)
	r.prev = f.last
	s.last = max(s.last, f.last)
	if f.last <= r.info.Last {
		return nil
	}
	if err := r.fn(f.first, f.last, f.payload); err != nil {
		if !errors.Is(err, ErrBadRecord) {
			return err
		}
		r.l.log.Error("wal: a record that checks out does not decode; its readings are lost", "segment", s.n, "offset", s.size,
			"first", f.first, "last", f.last, "err", err)
		r.damage(Damage{Kind: DamageRecord, Segment: s.n, File: r.l.path(segName(s.n)), Offset: s.size, First: f.first, Last: f.last})
		s.damaged = true
		r.info.Last = f.last
		return nil
	}
	r.info.Last = f.last
	if salvaged {
		r.info.Salvaged++
	} else {
		r.info.Records++
	}
	r.info.Bytes += int64(f.size)
	return nil
}

// classify tells torn regions from corrupt ones, now that every frame
// has been read: a region whose missing records a later frame records as
// synced was damaged after its sync. (A region the next frame continues
// without a gap lost nothing: a write cut short whose seqs were given
// again once it was found lost.)
func (r *replayer) classify() {
	for _, rg := range r.regions {
		d := Damage{Kind: DamageTorn, Segment: rg.seg.n, File: r.l.path(segName(rg.seg.n)), Offset: rg.offset}
		if rg.lost >= rg.expected {
			d.First, d.Last = rg.expected, rg.lost
		}
		if rg.durable >= rg.expected && rg.lost >= rg.expected {
			d.Kind = DamageCorrupt
			rg.seg.damaged = true
			r.l.log.Error("wal: synced records are damaged; the records after them were salvaged", "file", d.File,
				"offset", d.Offset, "lost_from", d.First, "lost_to", d.Last)
		} else {
			r.l.log.Warn("wal: a write cut short by a power cut was ignored (never acknowledged)", "file", d.File,
				"offset", d.Offset, "after_seq", rg.expected-1)
		}
		r.damage(d)
	}
}

// damage counts d and lists it.
func (r *replayer) damage(d Damage) {
	if d.Kind == DamageTorn {
		r.info.Torn++
	} else {
		r.info.Corrupt++
	}
	if len(r.info.Damage) < maxDamage {
		r.info.Damage = append(r.info.Damage, d)
	}
}

// position makes the log ready to append in a new segment, whose header
// records the process's base: nothing is ever appended after bytes of
// unknown origin, nor in a segment another process began. (An empty last
// segment is released right after, into the pool that the next
// preparation draws from.) l.mu is held; it is released
// while the segment is prepared.
func (l *Log) position() error {
	defer func() {
		for _, s := range l.segs[:max(len(l.segs)-1, 0)] {
			if s.f != nil {
				_ = s.f.Close() // read-only from now on; a close error loses nothing
				s.f = nil
			}
		}
	}()
	if err := l.prepareLocked(); err != nil {
		// A full disk: the log opens all the same, with no segment to
		// write in. Flush refuses until the preparer, which retries, has
		// made one, as when a rotation finds no room.
		for _, s := range l.segs {
			s.sealed = true
		}
		l.log.Warn("wal: no new segment can be prepared; writes wait for room", "err", err)
		return nil
	}
	l.segs = append(l.segs, l.spares[0])
	l.spares = l.spares[1:]
	return nil
}

// releaseLocked is Release with l.mu held.
func (l *Log) releaseLocked(seq uint64) {
	l.mu.Unlock()
	defer l.mu.Lock()
	if err := l.Release(seq); err != nil {
		l.log.Warn("wal: releasing replayed segments", "err", err)
	}
}

// closeAll closes the files of segs.
func (l *Log) closeAll(segs []*segment) {
	for _, s := range segs {
		if s.f != nil {
			_ = s.f.Close() // closing after a failed replay; that failure is reported
			s.f = nil
		}
	}
}
