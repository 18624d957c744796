package wal

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// File names: segments by number, released files kept for reuse, segments
// being prepared, and segments set aside because they hold damage.
const (
	segPattern        = "%016x.wal"
	freePattern       = "free-%016x.wal"
	tmpPattern        = "%016x.tmp"
	quarantinePattern = "quarantine-%016x.wal"
)

// newSalt draws the salt of a segment about to be prepared: a fresh epoch
// each time, so that a file recycled under the same number (after a failed
// preparation) still never validates its old frames.
func newSalt(n uint64) salt {
	e := rand.Uint64()
	for e == 0 {
		e = rand.Uint64()
	}
	return salt{n: n, epoch: e}
}

func segName(n uint64) string { return fmt.Sprintf(segPattern, n) }

// scanName parses name with pattern and reports whether it matched exactly.
func scanName(name, pattern string, n *uint64) bool {
	if _, err := fmt.Sscanf(name, pattern, n); err != nil {
		return false
	}
	return fmt.Sprintf(pattern, *n) == name
}

// zeroChunk is what preparation writes at a time.
const zeroChunk = 256 << 10

// firstPage is zeroed when a released file is reused, so that replay finds
// no frame in it before the first new one is written.
const firstPage = 4096

// prepare makes segment n ready to be written: a released file renamed and
// its first page reset, or a new file zero-filled to the segment size, its
// data synced and its name made durable. It runs without l.mu. A released
// file that could not be reused is handed back through putBack.
func (l *Log) prepare(n uint64, reuse string) (*segment, error) {
	fs, name, sl := l.o.FS, segName(n), newSalt(n)
	from := fmt.Sprintf(tmpPattern, n)
	var f File
	var err error
	if reuse != "" {
		from = reuse
		f, err = fs.Open(l.path(reuse))
		if err == nil {
			page := appendHeader(make([]byte, 0, firstPage), sl, l.base)[:firstPage]
			_, err = f.WriteAt(page, 0)
		}
	} else if f, err = fs.Create(l.path(from)); err == nil {
		err = l.zeroFill(f, sl)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = fs.Rename(l.path(from), l.path(name))
	}
	if err == nil {
		if err = fs.SyncDir(l.o.Dir); err != nil {
			from = name
		}
	}
	if err != nil {
		if f == nil {
			return nil, err // nothing was touched; a vanished file is forgotten
		}
		_ = f.Close() // the preparation failed; its error is the one to report
		if reuse != "" || from == name {
			l.putBack(from)
		} else {
			_ = fs.Remove(l.path(from)) // best effort: a leftover .tmp is removed at the next Open
		}
		return nil, err
	}
	return &segment{n: n, key: sl.key(), base: l.base, f: f, size: headerSize, syncedSize: headerSize}, nil
}

// putBack returns a file to the pool of reusable files after a failed
// preparation, under a free name.
func (l *Log) putBack(name string) {
	var n uint64
	if scanName(name, segPattern, &n) {
		free := fmt.Sprintf(freePattern, n)
		if err := l.o.FS.Rename(l.path(name), l.path(free)); err != nil {
			return // it stays a segment without frames; the next Open frees it
		}
		name = free
	}
	l.mu.Lock()
	l.free = append(l.free, name)
	l.mu.Unlock()
}

// zeroFill writes the header and zeros up to the segment size.
func (l *Log) zeroFill(f File, sl salt) error {
	chunk := make([]byte, min(zeroChunk, l.o.SegmentSize))
	copy(chunk, appendHeader(nil, sl, l.base))
	for off := int64(0); off < l.o.SegmentSize; {
		b := chunk[:min(int64(len(chunk)), l.o.SegmentSize-off)]
		if _, err := f.WriteAt(b, off); err != nil {
			return err
		}
		if off == 0 {
			clear(chunk[:headerSize])
		}
		off += int64(len(b))
	}
	return nil
}

// ensureSpares makes sure the next n segments are prepared, preparing them
// now if the background preparer has not. l.mu is held; it is released
// while preparing. A failed preparation (a full disk) wakes the preparer,
// which retries until one succeeds: its own retry may have come, and been
// skipped, while this one ran.
func (l *Log) ensureSpares(n int) error {
	for len(l.spares) < n {
		for l.preparing {
			l.prepared.Wait()
		}
		if len(l.spares) >= n {
			break
		}
		if err := l.prepareLocked(); err != nil {
			l.wakePreparer()
			return err
		}
	}
	return nil
}

// prepareLocked prepares the segment after the current one. l.mu is held
// and released while the files are written; one preparation runs at a time.
func (l *Log) prepareLocked() error {
	n := l.nextNumber()
	var reuse string
	if k := len(l.free); k > 0 {
		reuse, l.free = l.free[k-1], l.free[:k-1]
	}
	l.preparing = true
	l.mu.Unlock()
	seg, err := l.prepare(n, reuse)
	l.mu.Lock()
	l.preparing = false
	l.prepared.Broadcast()
	if err != nil {
		l.prepErr = fmt.Errorf("wal: prepare segment %d: %w", n, err)
		return l.prepErr
	}
	l.spares, l.prepErr = append(l.spares, seg), nil
	return nil
}

// nextNumber is the number of the next segment to prepare. l.mu is held.
func (l *Log) nextNumber() uint64 {
	switch {
	case len(l.spares) > 0:
		return l.spares[len(l.spares)-1].n + 1
	case len(l.segs) > 0:
		return l.segs[len(l.segs)-1].n + 1
	}
	return 1
}

// wakePreparer asks the preparer to make a spare ready. l.mu is held.
func (l *Log) wakePreparer() {
	select {
	case l.prep <- struct{}{}:
	default:
	}
}

// preparer keeps a spare segment ready in the background, so that a
// rotation costs the writer nothing. After a failure (a full disk) it tries
// again when woken or after a second. A wake that comes while a Flush is
// preparing is dropped: if that preparation fails, the Flush wakes it again.
func (l *Log) preparer() {
	defer close(l.prepDone)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		select {
		case <-l.quit:
			return
		case <-l.prep:
		case <-retry.C:
		}
		l.mu.Lock()
		if len(l.spares) == 0 && !l.preparing && l.broken == nil {
			if err := l.prepareLocked(); err != nil {
				l.log.Debug("wal: spare segment not ready", "err", err)
				retry.Reset(time.Second)
			}
		}
		l.mu.Unlock()
	}
}
