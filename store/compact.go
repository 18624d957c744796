package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// compactTxBytes bounds each transaction of the copy, so memory stays small.
const compactTxBytes = 16 << 20

// compactIfBloated compacts the file when it is more than CompactRatio times
// its live data and the waste is at least CompactMinBytes: bbolt files never
// shrink on their own, and retention frees pages only for reuse.
func (s *Store) compactIfBloated() error {
	fi, err := os.Stat(s.opts.Path)
	if err != nil {
		return fmt.Errorf("store: stat: %w", err)
	}
	file, used := fi.Size(), s.usedBytes()
	if float64(file) < s.opts.CompactRatio*float64(used) || file-used < s.opts.CompactMinBytes {
		return nil
	}
	return s.Compact()
}

// Compact rewrites the store into a new file with only its live data and
// swaps it in safely: the copy is written next to the store, fsync'd, renamed
// over the original and the directory fsync'd, so a crash at any point leaves
// either the old file or the new one, complete. Writes to bbolt (checkpoints,
// the outbox, devices) wait while it copies; readers and the log's ingest
// carry on, and only the swap itself blocks readers. If the directory
// cannot be synced after the swap, or the file cannot be reopened, the
// store fails (ErrFailed).
func (s *Store) Compact() error {
	start := time.Now()
	s.compacting.Store(true)
	defer s.compacting.Store(false)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()

	path := s.opts.Path
	tmp := path + ".compact"
	if err := os.Remove(tmp); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("store: compact: remove stale %s: %w", tmp, err)
	}
	before, err := fileSize(path)
	if err != nil {
		return err
	}
	if err := checkFreeSpace(filepath.Dir(path), before); err != nil {
		return err
	}
	if err := s.copyTo(tmp); err != nil {
		_ = os.Remove(tmp) // best effort; a stale copy is removed next time
		return err
	}
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	if s.closed != nil {
		_ = os.Remove(tmp)
		return s.closed
	}
	if err := s.db.Close(); err != nil {
		s.fail(fmt.Errorf("compaction could not close the file: %w", err))
		return fmt.Errorf("store: compact: close store: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp) // the original is untouched; the copy is abandoned
		if s.db, err = s.opts.openBolt(path, s.opts); err != nil {
			s.fail(fmt.Errorf("the file could not be reopened after a failed compaction: %w", err))
			return fmt.Errorf("store: compact: reopen: %w", err)
		}
		return fmt.Errorf("store: compact: swap in the copy: %w", err)
	}
	// Which of the two files the directory holds after a power cut is
	// unknown until the rename is synced: carrying on could write to one
	// that is then taken back. Only a restart can tell.
	if err := syncDir(filepath.Dir(path)); err != nil {
		s.fail(fmt.Errorf("compaction could not sync the directory after swapping the file in: %w", err))
		return fmt.Errorf("store: compact: sync the directory: %w", err)
	}
	db, err := s.opts.openBolt(path, s.opts)
	if err != nil {
		s.fail(fmt.Errorf("the file could not be reopened after compaction: %w", err))
		return fmt.Errorf("store: compact: reopen: %w", err)
	}
	s.db = db
	after, _ := fileSize(path) // only for the log line
	s.log.Info("store: compacted", "before", fmtSize(before), "after", fmtSize(after), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// fail marks the file closed by a failure, and the store failed. s.dbMu
// is held.
func (s *Store) fail(err error) {
	err = s.failStore(err)
	s.closed = err
}

// failStore marks the store failed (see ErrFailed) and returns the error
// every later call gets. The first failure is logged and closes Failed's
// channel.
func (s *Store) failStore(err error) error {
	if !errors.Is(err, ErrFailed) {
		err = fmt.Errorf("%w: %w", ErrFailed, err)
	}
	if s.broken.CompareAndSwap(nil, &err) {
		s.log.Error("store: failed; every write is refused until a restart, whose replay reports what is damaged", "err", err)
		close(s.failed)
		return err
	}
	return *s.broken.Load()
}

// Failed returns a channel that is closed when the store fails (see
// ErrFailed): the daemon exits then, so that its supervisor restarts it.
func (s *Store) Failed() <-chan struct{} { return s.failed }

// ErrCompactionYielded is returned by Compact when it gave up its copy so
// that checkpoints could run: the head was filling while it held the file.
var ErrCompactionYielded = errors.New("store: compaction gave way to checkpoints")

// copyTo writes a compacted copy of the store to tmp, reading it in
// transactions of compactTxBytes while readers carry on. The copy holds
// the file against checkpoints; if the head fills to one and a half times
// its bounds meanwhile, the copy is abandoned within 4096 keys and
// ErrCompactionYielded returned: ingest comes before tidiness.
func (s *Store) copyTo(tmp string) error {
	dst, err := bolt.Open(tmp, 0o640, &bolt.Options{Timeout: time.Second, NoFreelistSync: s.opts.boltOptions().NoFreelistSync, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("store: compact: create %s: %w", tmp, err)
	}
	s.dbMu.RLock()
	err = copyDB(dst, s.db, compactTxBytes, s.headFilling)
	s.dbMu.RUnlock()
	if err != nil {
		_ = dst.Close() // the copy is abandoned; its error adds nothing
		if errors.Is(err, ErrCompactionYielded) {
			return err
		}
		return fmt.Errorf("store: compact: copy: %w", err)
	}
	if err := dst.Close(); err != nil { // bbolt fsyncs every commit; Close releases the lock
		return fmt.Errorf("store: compact: close copy: %w", err)
	}
	return nil
}

// copyDB copies every bucket of src into dst, packed full, committing dst
// every txMax bytes; every 4096 keys it asks stop whether to give up
// (ErrCompactionYielded). It is bbolt's Compact with that way out.
func copyDB(dst, src *bolt.DB, txMax int64, stop func() bool) error {
	tx, err := dst.Begin(true)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // after a commit it only reports ErrTxClosed
	size, n := int64(0), 0
	// put stores k, v in the bucket at path (v nil: a bucket, with seq),
	// committing first when the transaction is full; every 4096 keys it
	// asks stop.
	put := func(path [][]byte, k, v []byte, seq uint64) error {
		if n++; n%4096 == 0 && stop() {
			return ErrCompactionYielded
		}
		if size += int64(len(k) + len(v)); size > txMax {
			if err := tx.Commit(); err != nil {
				return err
			}
			next, err := dst.Begin(true)
			if err != nil {
				return err
			}
			tx, size = next, 0
		}
		var b *bolt.Bucket
		var err error
		switch {
		case len(path) == 0:
			b, err = tx.CreateBucket(k)
		case v == nil:
			b, err = lookupBucket(tx, path).CreateBucket(k)
		default:
			b = lookupBucket(tx, path)
			b.FillPercent = 1.0
			return b.Put(k, v)
		}
		if err != nil {
			return err
		}
		return b.SetSequence(seq)
	}
	err = src.View(func(stx *bolt.Tx) error {
		return stx.ForEach(func(name []byte, sb *bolt.Bucket) error { return copyBucket(sb, nil, name, put) })
	})
	if err != nil {
		return err
	}
	return tx.Commit()
}

// copyBucket copies sb, named name in the bucket at path, with put.
func copyBucket(sb *bolt.Bucket, path [][]byte, name []byte, put func(path [][]byte, k, v []byte, seq uint64) error) error {
	if err := put(path, name, nil, sb.Sequence()); err != nil {
		return err
	}
	path = append(slices.Clip(path), name)
	return sb.ForEach(func(k, v []byte) error {
		if v == nil {
			return copyBucket(sb.Bucket(k), path, k, put)
		}
		return put(path, k, v, 0)
	})
}

// lookupBucket returns the bucket at path in tx.
func lookupBucket(tx *bolt.Tx, path [][]byte) *bolt.Bucket {
	b := tx.Bucket(path[0])
	for _, p := range path[1:] {
		b = b.Bucket(p)
	}
	return b
}

// headFilling reports whether the head holds one and a half times its
// bounds.
func (s *Store) headFilling() bool {
	h := s.head.stats()
	return 2*h.readings >= 3*s.opts.Head.MaxReadings || 2*s.wal.Stats().LiveBytes >= 3*s.opts.Head.MaxBytes
}

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("store: stat: %w", err)
	}
	return fi.Size(), nil
}

// checkFreeSpace refuses a compaction that could fill the disk: the copy may
// need as much room as the original.
func checkFreeSpace(dir string, need int64) error {
	free, err := diskFree(dir)
	if err != nil {
		return fmt.Errorf("store: compact: %w", err)
	}
	if free < need+need/10 {
		return fmt.Errorf("store: compact: %s free in %s, need %s", fmtSize(free), dir, fmtSize(need+need/10))
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close() // the sync error is the one that matters
		return err
	}
	return d.Close()
}
