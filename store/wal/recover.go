package wal

import (
	"fmt"
	"io"
)

// Recover makes a broken log (see ErrBroken) writable again from what is
// really on disk, as a restart and replay would, without the restart.
// Every segment written since its last successful sync is reopened,
// synced and dropped from the page cache; what its last successful sync
// covered must read back from the device as written (else the error wraps
// ErrLost); then a mark is written and synced where that ends, voiding
// the records of the failed write or sync, and writing goes on in a fresh
// segment. The appended, unflushed records are dropped. If the device still
// fails, the log stays broken and Recover may be called again. Only the
// writer goroutine calls it.
func (l *Log) Recover() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken == nil {
		return nil
	}
	l.Discard()
	from, to := l.durable.Load()+1, l.appended
	if to < from {
		from, to = 0, 0
	}
	for _, s := range l.segs {
		if s.written == s.synced && s.size == s.syncedSize {
			continue
		}
		if err := l.void(s, from, to); err != nil {
			return err
		}
	}
	// Writing goes on in a fresh segment; if none can be prepared (a full
	// disk), Flush refuses until the preparer has made one.
	next := "none yet"
	if err := l.ensureSpares(1); err == nil {
		cur := l.spares[0]
		l.spares = l.spares[1:]
		l.segs = append(l.segs, cur)
		next = segName(cur.n)
	}
	l.wakePreparer()
	l.log.Warn("wal: recovered from a failed write or sync; its records were voided, none of them acknowledged",
		"voided_from", from, "voided_to", to, "err", l.broken, "next_segment", next)
	l.broken = nil
	l.recoveries++
	return nil
}

// void ends segment s where its last successful sync did. l.mu and
// l.syncMu are held.
func (l *Log) void(s *segment, from, to uint64) error {
	if s.f != nil {
		_ = s.f.Close() // the handle that saw the failure; its error was reported
		s.f = nil
	}
	name := segName(s.n)
	f, err := l.o.FS.Open(l.path(name))
	if err != nil {
		return fmt.Errorf("wal: recover: open %s: %w", name, err)
	}
	s.f = f
	if err := f.Sync(); err != nil {
		return fmt.Errorf("wal: recover: sync %s: %w", name, err)
	}
	if err := f.DropCache(); err != nil {
		return fmt.Errorf("wal: recover: drop the cache of %s: %w", name, err)
	}
	if err := l.verify(s); err != nil {
		return err
	}
	mark := appendMark(nil, s.key, from, to)
	if _, err := f.WriteAt(mark, s.syncedSize); err != nil {
		return fmt.Errorf("wal: recover: write a mark in %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("wal: recover: sync the mark in %s: %w", name, err)
	}
	s.size = s.syncedSize + int64(len(mark))
	s.written++
	s.synced, s.syncedSize = s.written, s.size
	s.last = max(s.last, to)
	s.sealed = true
	return nil
}

// verify checks that the part of s its last successful sync covered reads
// back as whole frames.
func (l *Log) verify(s *segment) error {
	b := make([]byte, s.syncedSize)
	if n, err := s.f.ReadAt(b, 0); err != nil && (err != io.EOF || int64(n) != s.syncedSize) {
		return fmt.Errorf("wal: recover: read segment %d: %w", s.n, err)
	}
	h, err := checkHeader(b)
	if err != nil || h.n != s.n || h.key() != s.key || h.base != s.base {
		return fmt.Errorf("%w: segment %d's header", ErrLost, s.n)
	}
	for off := int64(headerSize); off < s.syncedSize; {
		f, state := parseFrame(b[off:], s.key)
		if state != frameOK {
			return fmt.Errorf("%w: segment %d at offset %d", ErrLost, s.n, off)
		}
		off += int64(f.size)
	}
	return nil
}
