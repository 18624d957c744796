package wal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
)

// Options configure a Log. Zero values mean the defaults given.
type Options struct {
	// Dir holds the segment files. Required.
	Dir string
	// SegmentSize is the size of every segment file. Default 8 MiB,
	// at least 64 KiB.
	SegmentSize int64
	// MaxFree is how many released segments are kept for reuse instead of
	// being deleted. Default 2.
	MaxFree int
	// FS is the file layer. Default OSFS.
	FS FS
	// Logger receives the log's warnings. Default: discard.
	Logger *slog.Logger
}

// DefaultSegmentSize is the default size of a segment file.
const DefaultSegmentSize = 8 << 20

// MinSegmentSize is the smallest segment size Open accepts.
const MinSegmentSize = 64 << 10

// ErrTooLarge is returned by Append for a record that cannot fit in one segment.
var ErrTooLarge = errors.New("wal: record larger than a segment")

// ErrBroken is wrapped by every error of a log that a failed write or sync
// left in an unknown state: after a failed fdatasync the kernel may have
// dropped the unwritten pages while still serving them from its cache, so
// nothing is written until Recover has found what is really on disk.
var ErrBroken = errors.New("wal: a failed write or sync left the log's tail unknown")

// ErrLost is wrapped by Recover's error when records a sync had covered
// no longer read back from the device: the log cannot be repaired in
// place, and the next Open must replay it and report what is damaged.
var ErrLost = errors.New("wal: synced records did not read back")

// segment is one segment file of the log.
type segment struct {
	n          uint64
	key        uint32 // its salt's checksum key
	base       uint64 // see header.base
	f          File   // open while it may still be written or synced
	last       uint64 // highest seq of its frames (or voided by its mark); 0 if none
	size       int64  // bytes used, header included
	written    uint64 // write generation
	synced     uint64 // generation covered by the last successful sync
	syncedSize int64  // bytes the last successful sync covered
	sealed     bool   // a mark, a tear or damage ends it: never written again
	damaged    bool   // replay found damage: quarantined, not recycled, when released
}

// Log is an open write-ahead log. See the package documentation for which
// methods may run concurrently.
type Log struct {
	o   Options
	log *slog.Logger

	mu       sync.Mutex
	segs     []*segment // in number order; the last is the current one
	spares   []*segment // prepared next segments, in order
	free     []string   // released files ready for reuse
	broken   error      // an I/O error left the log in an unknown state
	prepErr  error      // why the last preparation of a spare failed
	replayed bool
	base     uint64 // the last seq replay found: see header.base
	// quarantined lists the files set aside because they hold damage, by
	// replay now or in an earlier run; recoveries counts Recover calls
	// that made a broken log writable again.
	quarantined []string
	recoveries  int

	preparing bool       // a spare is being prepared (without mu held)
	prepared  *sync.Cond // signalled when a preparation ends

	syncMu sync.Mutex // one Sync at a time

	// Owned by the writer (Append, Flush, Recover).
	buf      []byte
	frames   []pending
	appended uint64 // highest seq appended since Open

	durable atomic.Uint64 // highest seq a completed sync covered

	prep     chan struct{}
	quit     chan struct{}
	prepDone chan struct{}

	syncs, writes, bytes atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

// pending is a frame appended and not yet flushed.
type pending struct {
	start, end int // its bytes in buf
	last       uint64
}

// Stats describe the log.
type Stats struct {
	// Segments in use (holding records not yet released) and ready for
	// reuse; SegmentSize is the size of each. Spare says the next segment
	// is prepared.
	Segments, Free int
	SegmentSize    int64
	Spare          bool
	// LiveBytes is what the segments in use hold.
	LiveBytes int64
	// Syncs, Writes and Bytes count fdatasyncs, write calls and bytes
	// written since Open.
	Syncs, Writes, Bytes uint64
	// Quarantined lists the segment files (paths) set aside because replay
	// found damage in them, now or in an earlier run: they are kept as
	// evidence until a person removes them. Recoveries counts broken logs
	// made writable again by Recover since Open.
	Quarantined []string
	Recoveries  int
	// Broken is set while a failed write or sync leaves the log's tail
	// unknown (until Recover); Err is Broken, or else why no spare segment
	// can be prepared (a full disk).
	Broken error
	Err    error
}

// Open opens the log in o.Dir, creating the directory if needed. Call Replay
// before anything is appended.
func Open(o Options) (*Log, error) {
	if o.Dir == "" {
		return nil, fmt.Errorf("wal: no directory given")
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.SegmentSize < MinSegmentSize {
		return nil, fmt.Errorf("wal: segment size %d is below the %d minimum", o.SegmentSize, MinSegmentSize)
	}
	if o.MaxFree <= 0 {
		o.MaxFree = 2
	}
	if o.FS == nil {
		o.FS = OSFS{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := o.FS.MkdirAll(o.Dir); err != nil {
		return nil, fmt.Errorf("wal: create %s: %w", o.Dir, err)
	}
	l := &Log{o: o, log: o.Logger, prep: make(chan struct{}, 1), quit: make(chan struct{}), prepDone: make(chan struct{})}
	l.prepared = sync.NewCond(&l.mu)
	names, err := o.FS.List(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("wal: list %s: %w", o.Dir, err)
	}
	for _, name := range names {
		var n uint64
		switch {
		case scanName(name, segPattern, &n):
			l.segs = append(l.segs, &segment{n: n})
		case scanName(name, freePattern, &n):
			l.free = append(l.free, name)
		case scanName(name, quarantinePattern, &n):
			l.quarantined = append(l.quarantined, l.path(name))
		case filepath.Ext(name) == ".tmp": // a preparation cut short by a crash
			if err := o.FS.Remove(l.path(name)); err != nil {
				return nil, fmt.Errorf("wal: remove %s: %w", name, err)
			}
		}
	}
	return l, nil
}

// Append adds a record holding sequence numbers first to last to the
// buffer; Flush writes it. Only the writer goroutine calls it.
func (l *Log) Append(first, last uint64, payload []byte) error {
	if first == 0 || last < first {
		return fmt.Errorf("wal: record %d-%d: bad sequence numbers", first, last)
	}
	if int64(frameHead+len(payload)) > l.o.SegmentSize-headerSize || len(payload) > MaxPayload {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(payload))
	}
	start := len(l.buf)
	l.buf = appendFrame(l.buf, 0, first, last, l.durable.Load(), payload)
	l.frames = append(l.frames, pending{start: start, end: len(l.buf), last: last})
	l.appended = max(l.appended, last)
	return nil
}

// Buffered returns the bytes appended and not yet flushed.
func (l *Log) Buffered() int { return len(l.buf) }

// Flush writes the appended records. If it fails before writing anything
// (no room for a new segment) the records stay buffered, so it may be
// retried or the buffer dropped with Discard; any other failure breaks the
// log (the error wraps ErrBroken): some of the records may have reached the
// file, and their sequence numbers must not be used again. Only the writer
// goroutine calls it.
func (l *Log) Flush() error {
	if len(l.buf) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil {
		return l.broken
	}
	if !l.replayed {
		return fmt.Errorf("wal: Flush before Replay")
	}
	// Cut the buffer at frame boundaries into the parts each segment takes;
	// every segment needed must be ready before anything is written, so a
	// full disk costs no partial write.
	// A sealed last segment (or none: a disk full since Open) takes nothing.
	var cur *segment
	room, start := int64(0), 0
	if k := len(l.segs); k > 0 && !l.segs[k-1].sealed {
		cur = l.segs[k-1]
		room = l.o.SegmentSize - cur.size
	}
	type part struct{ start, end int }
	var parts []part
	for i, f := range l.frames {
		if int64(f.end-start) > room {
			prev := start
			if i > 0 {
				prev = l.frames[i-1].end
			}
			parts = append(parts, part{start, prev})
			start, room = prev, l.o.SegmentSize-headerSize
		}
	}
	parts = append(parts, part{start, len(l.buf)})
	if err := l.ensureSpares(len(parts) - 1); err != nil {
		return err
	}
	fi := 0
	for i, p := range parts {
		if i > 0 {
			cur = l.spares[0]
			l.spares = l.spares[1:]
			l.segs = append(l.segs, cur)
			l.wakePreparer()
		}
		if p.end == p.start {
			continue
		}
		for fi < len(l.frames) && l.frames[fi].end <= p.end {
			saltFrame(l.buf[l.frames[fi].start:], cur.key)
			fi++
		}
		if err := l.write(cur, l.buf[p.start:p.end], l.frames[fi-1].last); err != nil {
			return err
		}
	}
	l.Discard()
	return nil
}

// Discard drops the appended records that were not flushed.
func (l *Log) Discard() { l.DiscardFrom(0) }

// DiscardFrom drops the records appended since Buffered returned mark.
func (l *Log) DiscardFrom(mark int) {
	l.buf = l.buf[:mark]
	for len(l.frames) > 0 && l.frames[len(l.frames)-1].end > mark {
		l.frames = l.frames[:len(l.frames)-1]
	}
}

// write writes b at the end of seg. l.mu is held.
func (l *Log) write(seg *segment, b []byte, last uint64) error {
	if _, err := seg.f.WriteAt(b, seg.size); err != nil {
		seg.written++ // part of b may have reached the file: Recover voids it
		l.broken = fmt.Errorf("%w: write segment %d: %w", ErrBroken, seg.n, err)
		return l.broken
	}
	seg.size += int64(len(b))
	seg.last = last
	seg.written++
	l.writes.Add(1)
	l.bytes.Add(uint64(len(b)))
	return nil
}

// Sync makes every record flushed before the call durable. It may run
// concurrently with Append and Flush; records flushed during it may or may
// not be covered. A failed sync breaks the log (see ErrBroken), whatever
// the error: the kernel may have dropped pages it could not write.
func (l *Log) Sync() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	type job struct {
		seg  *segment
		f    File
		gen  uint64
		size int64
		last uint64
	}
	l.mu.Lock()
	if l.broken != nil {
		l.mu.Unlock()
		return l.broken
	}
	var jobs []job
	for _, s := range l.segs {
		if s.written > s.synced {
			jobs = append(jobs, job{s, s.f, s.written, s.size, s.last})
		}
	}
	l.mu.Unlock()
	for _, j := range jobs {
		if err := j.f.Sync(); err != nil {
			l.mu.Lock()
			l.broken = fmt.Errorf("%w: sync segment %d: %w", ErrBroken, j.seg.n, err)
			l.mu.Unlock()
			return l.broken
		}
	}
	l.syncs.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, j := range jobs {
		j.seg.synced, j.seg.syncedSize = j.gen, j.size
		if j.last > l.durable.Load() {
			l.durable.Store(j.last)
		}
	}
	// Segments before the current one are never written again: once
	// synced their files can be closed.
	for _, s := range l.segs[:len(l.segs)-1] {
		if s.f != nil && s.synced == s.written {
			if err := s.f.Close(); err != nil {
				l.log.Warn("wal: closing a synced segment", "segment", s.n, "err", err)
			}
			s.f = nil
		}
	}
	return nil
}

// Release gives up the segments that hold only records up to seq: the
// store checkpointed them. Their files are kept for reuse (up to MaxFree)
// or deleted; a file replay found damage in is set aside under a
// "quarantine-" name instead, as evidence. The current segment is never
// released.
func (l *Log) Release(seq uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for len(l.segs) > 1 {
		s := l.segs[0]
		if s.last > seq || s.written > s.synced {
			break
		}
		if s.f != nil {
			errs = append(errs, s.f.Close())
			s.f = nil
		}
		l.segs = l.segs[1:]
		name := segName(s.n)
		if s.damaged {
			errs = append(errs, l.quarantine(name, s.n))
			continue
		}
		if len(l.free) < l.o.MaxFree {
			free := fmt.Sprintf(freePattern, s.n)
			if err := l.o.FS.Rename(l.path(name), l.path(free)); err != nil {
				errs = append(errs, err)
				continue
			}
			l.free = append(l.free, free)
			continue
		}
		errs = append(errs, l.o.FS.Remove(l.path(name)))
	}
	if len(l.free) > 0 {
		l.wakePreparer()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("wal: release segments: %w", err)
	}
	return nil
}

// Stats returns the log's state.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := Stats{Segments: len(l.segs), Free: len(l.free), SegmentSize: l.o.SegmentSize, Spare: len(l.spares) > 0,
		Syncs: l.syncs.Load(), Writes: l.writes.Load(), Bytes: l.bytes.Load(),
		Quarantined: slices.Clone(l.quarantined), Recoveries: l.recoveries}
	for _, s := range l.segs {
		st.LiveBytes += s.size - headerSize
	}
	st.Broken, st.Err = l.broken, l.broken
	if st.Err == nil && len(l.spares) == 0 && l.prepErr != nil {
		st.Err = l.prepErr
	}
	return st
}

// Close stops the preparer and closes the files. It does not sync: the
// caller syncs what it needs first. It is safe to call more than once.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		if l.replayed {
			close(l.quit)
			<-l.prepDone
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		var errs []error
		for _, s := range append(l.segs, l.spares...) {
			if s.f != nil {
				errs = append(errs, s.f.Close())
				s.f = nil
			}
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

func (l *Log) path(name string) string { return filepath.Join(l.o.Dir, name) }

// quarantine sets the segment file name aside, with the number n, so that
// it is never recycled. l.mu is held.
func (l *Log) quarantine(name string, n uint64) error {
	to := fmt.Sprintf(quarantinePattern, n)
	if err := l.o.FS.Rename(l.path(name), l.path(to)); err != nil {
		return fmt.Errorf("wal: quarantine %s: %w", name, err)
	}
	l.quarantined = append(l.quarantined, l.path(to))
	l.log.Warn("wal: a segment holding damaged records was set aside", "file", l.path(to))
	return l.o.FS.SyncDir(l.o.Dir)
}
