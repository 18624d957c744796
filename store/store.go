package store

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"fieldgate/store/wal"
)

// Bucket and meta key names.
var (
	bMeta        = []byte("meta")
	bReadings    = []byte("readings")
	bSeries      = []byte("series")
	bIndex       = []byte("index")
	bDevices     = []byte("devices")
	bOutbox      = []byte("outbox")
	bDeadLetters = []byte("deadletters")
	bCounters    = []byte("counters")
	bUsers       = []byte("users")
	bTokens      = []byte("tokens")

	allBuckets = [][]byte{bMeta, bReadings, bSeries, bIndex, bDevices, bOutbox, bDeadLetters, bCounters, bUsers, bTokens, bClockRepair}

	kGatewayID   = []byte("gateway_id")
	kIncarnation = []byte("incarnation")
	kSchema      = []byte("schema")
	// kLastSeq is the checkpoint: the highest seq moved into bbolt. Later
	// readings are in the log (and the head).
	kLastSeq    = []byte("last_seq")
	kAcked      = []byte("acked")
	kCount      = []byte("count") // readings in bbolt
	kNextSeries = []byte("next_series")
)

// Store is an open fieldgate store. Its methods are safe for concurrent use.
type Store struct {
	opts        Options
	logOpts     wal.Options
	log         *slog.Logger
	gatewayID   string
	incarnation string    // see Incarnation
	damage      logDamage // what replays found wrong in the log, over the store's life

	// dbMu is held for reading around every transaction and for writing
	// while compaction swaps the file, so no transaction sees a closed DB.
	// writeMu is held for reading around every write transaction and for
	// writing while compaction copies the file, so that no write is lost
	// and readers (and the log) carry on meanwhile.
	dbMu    sync.RWMutex
	writeMu sync.RWMutex
	db      *bolt.DB
	closed  error                 // under dbMu: why the file is closed; Stats must not touch db
	broken  atomic.Pointer[error] // set when the store failed (see ErrFailed)
	failed  chan struct{}         // closed when broken is set

	wal    *wal.Log
	head   *head
	series seriesCache
	c      *committer

	lastSeq    atomic.Uint64 // highest durable seq (log or bbolt)
	count      atomic.Int64  // readings in the store, head included
	repairFrom atomic.Uint64 // readings from this seq on may wait for clock repair
	full       atomic.Bool   // reject_new: the store is at its cap
	compacting atomic.Bool   // a compaction holds (or waits for) the file
	boltUsed   atomic.Int64  // bytes of live data in bbolt, as last measured

	ckptMu sync.Mutex // one checkpoint at a time
	ckpt   ckptState

	maint     chan struct{} // wakes the maintainer
	maintStop chan struct{}
	maintDone chan struct{}
	rate      ingestRate
	closeOnce sync.Once
	closeErr  error
}

// Open opens the store at opts.Path, creating it (and its directory) if it
// does not exist, runs schema migrations, replays the write-ahead log into
// the head (so that every acknowledged reading is there before anything
// new is accepted), compacts the file if it has grown far beyond its live
// data, and starts the committer and the maintainer.
func Open(opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	dir := filepath.Dir(opts.Path)
	if err := wal.MkdirAllDurable(dir, 0o750); err != nil {
		return nil, fmt.Errorf("store: create directory: %w", err)
	}
	_, statErr := os.Stat(opts.Path)
	db, err := opts.openBolt(opts.Path, opts)
	if err != nil {
		return nil, err
	}
	if os.IsNotExist(statErr) { // a new file: its name must survive a power cut too
		if err := syncDir(dir); err != nil {
			_ = db.Close() // the sync error is what the caller needs
			return nil, fmt.Errorf("store: sync %s: %w", dir, err)
		}
	}
	s := &Store{opts: opts, log: opts.Logger, db: db, head: newHead(), logOpts: opts.walOptions(), failed: make(chan struct{})}
	s.ckpt.progress = make(chan struct{})
	if err := s.init(); err != nil {
		_ = db.Close() // the init error is what the caller needs
		return nil, err
	}
	if opts.KeepBoot {
		s.opts.BootID = s.storedBoot()
	}
	if s.wal, err = wal.Open(s.logOpts); err != nil {
		_ = db.Close() // the log's error is what the caller needs
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := s.replay(); err != nil {
		_ = s.wal.Close()
		_ = db.Close()
		return nil, err
	}
	if err := s.adoptBoot(s.opts.BootID); err != nil {
		_ = s.wal.Close()
		_ = db.Close() // the adopt error is what the caller needs
		return nil, err
	}
	if err := s.compactIfBloated(); err != nil {
		s.log.Warn("store: compaction at open failed; continuing with the file as it is", "err", err)
	}
	s.c = newCommitter(s, s.wal, s.lastSeq.Load()+1)
	s.maint = make(chan struct{}, 1)
	s.maintStop = make(chan struct{})
	s.maintDone = make(chan struct{})
	s.rate.observe(s.opts.Now(), s.lastSeq.Load())
	go s.maintain()
	return s, nil
}

// openBolt opens the bbolt file with fieldgate's options and turns bbolt's
// errors (and the panics older versions raised on corrupt files) into
// messages that say what is wrong with the file.
func openBolt(path string, opts Options) (db *bolt.DB, err error) {
	defer func() {
		if p := recover(); p != nil {
			db, err = nil, fmt.Errorf("%w: %s is corrupt (%v)", ErrNotAStore, path, p)
		}
	}()
	db, err = bolt.Open(path, 0o640, opts.boltOptions())
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s (is another fieldgate running?)", ErrInUse, path)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, fmt.Errorf("%w: %s is not a bbolt database or is corrupt: %v", ErrNotAStore, path, err)
	default:
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
}

// init checks that the file is a fieldgate store (or empty), creates the
// buckets, migrates the schema and loads the in-memory state.
func (s *Store) init() error {
	var current bool
	if err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		current = meta != nil && getUint(meta, kSchema) == SchemaVersion
		return nil
	}); err != nil {
		return err
	}
	if !current { // a new store, or an older schema: one write transaction
		err := s.db.Update(func(tx *bolt.Tx) error {
			if tx.Bucket(bMeta) == nil {
				if err := tx.ForEach(func([]byte, *bolt.Bucket) error { return ErrNotAStore }); err != nil {
					return fmt.Errorf("%w: %s holds another application's bbolt database", ErrNotAStore, s.opts.Path)
				}
				return s.create(tx)
			}
			return s.migrate(tx)
		})
		if err != nil {
			return err
		}
	}
	return s.db.View(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("%w: %s lacks bucket %q", ErrNotAStore, s.opts.Path, name)
			}
		}
		meta := tx.Bucket(bMeta)
		id := string(meta.Get(kGatewayID))
		if s.opts.GatewayID != "" && s.opts.GatewayID != id {
			return fmt.Errorf("%w: the store at %s belongs to gateway %q, the configuration says %q; "+
				"either set gateway.id to %q (and register that id in the cloud), or, to start a new store under %q, "+
				"move the data directory aside (its readings stay there, unsent)",
				ErrGatewayMismatch, s.opts.Path, id, s.opts.GatewayID, id, s.opts.GatewayID)
		}
		s.gatewayID, s.incarnation = id, string(meta.Get(kIncarnation))
		s.lastSeq.Store(getUint(meta, kLastSeq))
		s.count.Store(int64(getUint(meta, kCount)))
		s.repairFrom.Store(getUint(meta, kRepairFrom))
		return s.series.load(tx)
	})
}

// create lays out a new store.
func (s *Store) create(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("store: create bucket %s: %w", name, err)
		}
	}
	id := s.opts.GatewayID
	if id == "" {
		id = newGatewayID()
	}
	s.gatewayID, s.incarnation = id, newIncarnation()
	meta := tx.Bucket(bMeta)
	if err := meta.Put(kGatewayID, []byte(id)); err != nil {
		return err
	}
	if err := meta.Put(kIncarnation, []byte(s.incarnation)); err != nil {
		return err
	}
	return putUint(meta, kSchema, SchemaVersion)
}

// newGatewayID returns a random id such as "fg-3f9a0c71d2b4".
func newGatewayID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return "fg-" + hex.EncodeToString(b[:])
}

// newIncarnation returns a random id for a new store: 16 hex digits.
func newIncarnation() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b[:])
}

// GatewayID returns the id the store was created with; it is the first part
// of every reading's cloud-wide identity (gateway, incarnation, seq).
func (s *Store) GatewayID() string { return s.gatewayID }

// Incarnation returns the random id made when the store was created (empty
// for a store made before incarnations): the second part of a reading's
// identity. A store that starts over under the same gateway id (a new
// card, a re-flash, a deleted data directory) gets a new one, so its seqs,
// which start at 1 again, never collide with the old store's.
func (s *Store) Incarnation() string { return s.incarnation }

// Path returns the store file's path.
func (s *Store) Path() string { return s.opts.Path }

// view runs fn in a read transaction.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	if s.closed != nil {
		return s.closed
	}
	return s.db.View(fn)
}

// update runs fn in a write transaction, committed and fsync'd on return.
// An error of fn rolls the transaction back; an error of the commit
// itself (a failed write or fsync) makes the store reopen the file from
// what is on disk before anything else touches it (see reopen).
func (s *Store) update(fn func(*bolt.Tx) error) error {
	s.writeMu.RLock()
	defer s.writeMu.RUnlock()
	s.dbMu.RLock()
	if s.closed != nil {
		s.dbMu.RUnlock()
		return s.closed
	}
	var fnErr error
	err := s.db.Update(func(tx *bolt.Tx) error {
		fnErr = fn(tx)
		return fnErr
	})
	s.dbMu.RUnlock()
	if err != nil && fnErr == nil {
		if rerr := s.reopen(err); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	return err
}

// Check runs bbolt's consistency check over the whole file.
func (s *Store) Check() error {
	return s.view(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("store: consistency check: %w", err)
		}
		return nil
	})
}

// Close stops accepting writes, writes and syncs everything already
// queued, checkpoints the head into bbolt (so the next Open has no log to
// replay), stops the maintainer and closes the files. It is safe to call
// more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.maintStop)
		<-s.maintDone
		err := s.c.close()
		if cerr := s.checkpoint(); cerr != nil {
			s.log.Warn("store: final checkpoint failed; the log keeps the readings", "err", cerr)
		}
		err = errors.Join(err, s.wal.Close())
		s.dbMu.Lock()
		defer s.dbMu.Unlock()
		if s.closed == nil {
			err = errors.Join(err, s.db.Close())
		} else {
			err = errors.Join(err, s.closed) // closed earlier by a failure
		}
		s.closed = ErrClosed
		s.closeErr = err
	})
	return s.closeErr
}

func getUint(b *bolt.Bucket, k []byte) uint64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putUint(b *bolt.Bucket, k []byte, v uint64) error {
	return b.Put(k, binary.BigEndian.AppendUint64(nil, v))
}

// fmtSize formats a byte count for messages.
func fmtSize(n int64) string {
	const mib = 1 << 20
	if n >= mib {
		return strconv.FormatFloat(float64(n)/mib, 'f', 1, 64) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}
