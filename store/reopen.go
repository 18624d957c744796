package store

import (
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// reopen follows a failed bbolt commit. bbolt cannot roll back a commit
// that failed after it wrote pages (its maintainers and etcd treat it as
// fatal), and after a failed fsync the kernel may serve pages from its
// cache that never reached the device. So the file is closed, dropped from
// the page cache, and opened again: what bbolt then reads is what is on
// disk, the last commit whose meta page made it there. The state the store
// keeps in memory about the file is loaded again. If the file cannot be
// reopened the store fails (ErrFailed). It takes the file exclusively:
// readers and writers wait.
func (s *Store) reopen(cause error) error {
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	if s.closed != nil {
		return s.closed
	}
	s.log.Error("store: a bbolt commit failed; reopening the file from what is on disk", "err", cause)
	if err := s.db.Close(); err != nil {
		s.fail(fmt.Errorf("a failed commit (%v) left a file that could not be closed: %w", cause, err))
		return s.closed
	}
	if err := dropCache(s.opts.Path); err != nil {
		s.log.Warn("store: could not drop the file from the page cache", "err", err)
	}
	db, err := s.opts.openBolt(s.opts.Path, s.opts)
	if err == nil {
		s.db = db
		err = s.db.View(s.reload)
	}
	if err != nil {
		s.fail(fmt.Errorf("the file could not be reopened after a failed commit (%v): %w", cause, err))
		return s.closed
	}
	return nil
}

// reload loads again what the store keeps in memory about the file's
// content. The head (and the log) are untouched: a checkpoint that did not
// reach the file is done again, and one that did is skipped (readers skip
// the head's readings up to the file's checkpoint). The count of readings
// is the head's and the file's together, which a checkpoint never changes.
func (s *Store) reload(tx *bolt.Tx) error {
	s.repairFrom.Store(getUint(tx.Bucket(bMeta), kRepairFrom))
	return s.series.load(tx)
}

// dropCache evicts the file's clean pages from the page cache.
func dropCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
