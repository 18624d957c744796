package wal

import (
	"encoding/binary"
	"fmt"
	"io"
)

// ReplayInfo says what Replay found.
type ReplayInfo struct {
	// Last is the highest sequence number of a valid record, or the after
	// argument if no record is newer.
	Last uint64
	// Records and Bytes count the records handed to the callback.
	Records int
	Bytes   int64
	// Torn counts segments whose tail held a record cut short by a crash:
	// the tail was ignored and sealed.
	Torn int
	// Corrupt counts segment files whose header was unreadable; they were
	// set aside for reuse.
	Corrupt int
	// Gaps counts places where sequence numbers jump: records that were
	// synced and then lost (a failing disk), or never written.
	Gaps int
}

// Replay reads the log and calls fn, in order, for every record holding a
// sequence number above after; payload is valid only during the call. It
// then positions the log for writing in a fresh segment, so records are
// never appended after a torn tail, and starts the background preparation
// of spare segments. It must be called once, before Append.
func (l *Log) Replay(after uint64, fn func(first, last uint64, payload []byte) error) (ReplayInfo, error) {
	info := ReplayInfo{Last: after}
	var buf []byte
	kept := l.segs[:0]
	for _, s := range l.segs {
		f, err := l.o.FS.Open(l.path(segName(s.n)))
		if err != nil {
			return info, fmt.Errorf("wal: open segment %d: %w", s.n, err)
		}
		s.f = f
		state, err := l.replaySegment(s, &buf, &info, fn)
		if err != nil {
			_ = f.Close() // the replay error is the one to report
			s.f = nil
			l.closeAll(kept)
			return info, err
		}
		if state != segInUse {
			_ = f.Close() // set aside below; nothing was read from it
			s.f = nil
			if state == segCorrupt {
				info.Corrupt++
				l.log.Warn("wal: segment with an unreadable header set aside", "segment", s.n)
			}
			l.putBack(segName(s.n))
			continue
		}
		kept = append(kept, s)
	}
	l.segs = kept
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.position(); err != nil {
		l.closeAll(l.segs)
		return info, err
	}
	l.replayed = true
	go l.preparer()
	l.wakePreparer()
	l.releaseLocked(after)
	return info, nil
}

// segState is what replay made of a segment file.
type segState int

const (
	segInUse   segState = iota
	segCorrupt          // its header is unreadable
	// segRenamed: its header names another segment. A released file was
	// being reused when the power went: its data was synced, its rename
	// not. It holds no record yet (a segment is used only once its name is
	// durable), so it simply goes back to the pool.
	segRenamed
)

// replaySegment replays one segment.
func (l *Log) replaySegment(s *segment, buf *[]byte, info *ReplayInfo, fn func(first, last uint64, payload []byte) error) (segState, error) {
	size, err := s.f.Size()
	if err != nil {
		return 0, fmt.Errorf("wal: segment %d: %w", s.n, err)
	}
	if int64(cap(*buf)) < size {
		*buf = make([]byte, size)
	}
	b := (*buf)[:size]
	if n, err := s.f.ReadAt(b, 0); err != nil && (err != io.EOF || int64(n) != size) {
		return 0, fmt.Errorf("wal: read segment %d: %w", s.n, err)
	}
	if n, err := checkHeader(b); err != nil {
		return segCorrupt, nil
	} else if n != s.n {
		return segRenamed, nil
	}
	s.size = headerSize
	var expected uint64
	for {
		f, state := parseFrame(b[s.size:])
		if state == frameOK && f.seal {
			return segInUse, nil
		}
		if state != frameOK || (expected != 0 && f.first != expected) {
			if state != frameZero && l.torn(b[s.size:], expected) {
				info.Torn++
				s.torn = true
				l.log.Warn("wal: torn record after a crash ignored", "segment", s.n, "offset", s.size, "after_seq", expected-1)
				if err := l.seal(s); err != nil {
					return 0, err
				}
			}
			return segInUse, nil
		}
		if f.last > info.Last {
			if f.first > info.Last+1 {
				info.Gaps++
				l.log.Warn("wal: sequence gap in the log", "segment", s.n, "missing_from", info.Last+1, "missing_to", f.first-1)
			}
			if err := fn(f.first, f.last, f.payload); err != nil {
				return 0, err
			}
			info.Last = f.last
			info.Records++
			info.Bytes += int64(f.size)
		}
		expected = f.last + 1
		s.last = max(s.last, f.last)
		s.size += int64(f.size)
	}
}

// torn reports whether b, where a segment's valid frames end, starts with a
// frame of ours that a crash cut short (its header continues the sequence)
// rather than stale data from the segment's previous use.
func (l *Log) torn(b []byte, expected uint64) bool {
	if len(b) < frameHead {
		return false
	}
	first := binary.BigEndian.Uint64(b[8:])
	return first != 0 && (first == expected || expected == 0)
}

// seal writes an empty frame where a segment's valid frames end, so that a
// torn tail is reported once.
func (l *Log) seal(s *segment) error {
	if _, err := s.f.WriteAt(sealFrame(), s.size); err != nil {
		return fmt.Errorf("wal: seal segment %d: %w", s.n, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("wal: seal segment %d: %w", s.n, err)
	}
	return nil
}

// position makes the log ready to append: an unused last segment of the
// right size is written from its start; otherwise a new segment begins.
// l.mu is held.
func (l *Log) position() error {
	defer func() {
		for _, s := range l.segs[:max(len(l.segs)-1, 0)] {
			if s.f != nil {
				_ = s.f.Close() // read-only from now on; a close error loses nothing
				s.f = nil
			}
		}
	}()
	if k := len(l.segs); k > 0 {
		last := l.segs[k-1]
		if size, err := last.f.Size(); err == nil && last.last == 0 && !last.torn && last.size == headerSize && size == l.o.SegmentSize {
			return nil
		}
	}
	if err := l.prepareLocked(); err != nil {
		return err
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
