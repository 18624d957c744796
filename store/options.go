package store

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// FullPolicy says what the store does with readings that were not yet
// uploaded when it reaches its hard size cap.
type FullPolicy string

const (
	// FullDropOldest deletes the oldest un-uploaded readings to make room,
	// counting each one under the reason "full_drop_oldest".
	FullDropOldest FullPolicy = "drop_oldest"
	// FullRejectNew keeps what is stored and refuses new readings with ErrFull;
	// queued readings refused this way are counted under "full_reject_new".
	FullRejectNew FullPolicy = "reject_new"
)

// Options configure a Store. The zero value of every field but Path means
// "use the default" listed with it.
type Options struct {
	// Path of the bbolt file. Required.
	Path string
	// GatewayID is written into a new store. For an existing store it must be
	// empty or equal to the stored id. Default: a random "fg-…" id.
	GatewayID string

	// BootID identifies the machine's current boot. Unsynced readings with a
	// Mono time are kept for repair only within one boot; at Open, entries of
	// another boot are discarded (their readings stay flagged unsynced).
	// Empty: no reading is kept for repair.
	BootID string

	// CommitInterval bounds how long a queued (Enqueue) reading may wait for
	// its commit: at most this much queued data is lost in a crash. Default 1s.
	CommitInterval time.Duration
	// QueueSize is how many Append/Enqueue calls may wait for the committer
	// before callers block (back-pressure). Default 4096.
	QueueSize int
	// MaxBatch caps the readings written in one transaction. Default 20000.
	MaxBatch int
	// CarryLimit caps the queued readings held in memory while commits fail
	// (disk full, I/O error); beyond it the oldest are dropped and counted
	// under "commit_failed". Default 100000.
	CarryLimit int

	// MaxBytes is the hard cap on the store's data. Default 1 GiB.
	MaxBytes int64
	// FullPolicy applies when un-uploaded data alone reaches MaxBytes.
	// Default FullDropOldest.
	FullPolicy FullPolicy
	// RetainAge deletes uploaded readings older than this. 0 keeps them by age.
	RetainAge time.Duration
	// RetainBytes deletes the oldest uploaded readings while the store's data
	// exceeds this. 0 means only MaxBytes applies.
	RetainBytes int64
	// LocalOnly says no uplink is configured: every reading counts as
	// delivered for retention, since nothing will ever upload it.
	LocalOnly bool

	// CompactRatio triggers compaction when the file is this many times larger
	// than its live data (and at least CompactMinBytes larger). Default 2.
	CompactRatio float64
	// CompactMinBytes is the least waste worth a compaction. Default 64 MiB.
	CompactMinBytes int64
	// MaintenanceInterval is how often retention and the compaction check run.
	// Default 1 minute.
	MaintenanceInterval time.Duration

	// Logger receives the store's logs. Default: discard.
	Logger *slog.Logger
	// OnCommit, if set, is called by the committer after every successful
	// commit with the readings it stored (Seq set) and how long the write and
	// fsync took: live streams and metrics hang off it. It must return
	// quickly and must not keep rs.
	OnCommit func(rs []Reading, took time.Duration)
	// Now returns the current time (tests inject a fake). Default time.Now.
	Now func() time.Time
}

// DefaultMaxBytes is the default hard cap on the store's data.
const DefaultMaxBytes = 1 << 30

// maxBytes32 is the largest store a 32-bit process can map: the address
// space is about 3 GB and bbolt maps the whole file.
const maxBytes32 = 1536 << 20

func (o Options) withDefaults() Options {
	if o.CommitInterval <= 0 {
		o.CommitInterval = time.Second
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 4096
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 20000
	}
	if o.CarryLimit <= 0 {
		o.CarryLimit = 100000
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.FullPolicy == "" {
		o.FullPolicy = FullDropOldest
	}
	if o.CompactRatio <= 0 {
		o.CompactRatio = 2
	}
	if o.CompactMinBytes <= 0 {
		o.CompactMinBytes = 64 << 20
	}
	if o.MaintenanceInterval <= 0 {
		o.MaintenanceInterval = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

func (o Options) validate() error {
	switch {
	case o.Path == "":
		return fmt.Errorf("store: no path given")
	case o.FullPolicy != FullDropOldest && o.FullPolicy != FullRejectNew:
		return fmt.Errorf("store: full policy %q: want %q or %q", o.FullPolicy, FullDropOldest, FullRejectNew)
	case strconv.IntSize == 32 && o.MaxBytes > maxBytes32:
		return fmt.Errorf("store: max size %d bytes is more than a 32-bit system can map (%d)", o.MaxBytes, maxBytes32)
	case o.MaxBytes < 1<<20:
		return fmt.Errorf("store: max size %d bytes is below the 1 MiB minimum", o.MaxBytes)
	}
	return nil
}

// boltOptions are chosen, not defaulted:
//   - Timeout: a second fieldgate on the same file fails fast instead of hanging.
//   - FreelistType hashmap: stays fast when retention fragments the file.
//   - NoFreelistSync: the freelist is not rewritten on every commit, which
//     cuts bytes written per reading (SD card wear); the price is a scan of
//     the file at open, which is what etcd chose too.
//   - InitialMmapSize: large on 64-bit so readers never block the writer's
//     remap; small on 32-bit ARM where the address space is ~3 GB in all.
//   - MaxSize: the file can never outgrow the hard cap by more than a
//     margin, even if the size estimate that drives the full policy is off.
func (o Options) boltOptions() *bolt.Options {
	mmap := 1 << 30
	if strconv.IntSize == 32 {
		mmap = 64 << 20
	}
	if int64(mmap) > o.MaxBytes {
		mmap = int(o.MaxBytes)
	}
	return &bolt.Options{
		Timeout:         time.Second,
		FreelistType:    bolt.FreelistMapType,
		NoFreelistSync:  true,
		InitialMmapSize: mmap,
		MaxSize:         int(o.MaxBytes + o.MaxBytes/8 + 4<<20),
	}
}
