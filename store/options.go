package store

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"fieldgate/store/wal"
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
	// KeepBoot opens the store as of the boot it last knew, ignoring
	// BootID: readings waiting for clock repair keep waiting. Management
	// commands use it, so adding a device between the daemon's runs
	// abandons no repair.
	KeepBoot bool

	// CommitInterval bounds how long a queued (Enqueue) reading may wait for
	// the log's sync: at most this much queued data is lost in a power cut.
	// Default 1s. A longer SyncWindow stretches it: no sync starts sooner
	// than SyncWindow after the last.
	CommitInterval time.Duration
	// SyncWindow is the least time between the starts of two syncs of the
	// log. 0 (the default) syncs as soon as the previous sync ended and
	// someone waits; a longer window makes a waiting Append (a PUBACK) wait
	// up to that long so that fewer syncs write the same block again: fewer
	// bytes on an SD card.
	SyncWindow time.Duration
	// QueueSize is how many Append/Enqueue calls may wait for the committer
	// before callers block (back-pressure). Default 4096.
	QueueSize int
	// MaxBatch caps the readings written to the log in one write and moved
	// into bbolt in one checkpoint transaction. Default 20000.
	MaxBatch int
	// CarryLimit caps the queued readings held in memory while writes fail
	// (disk full, I/O error); beyond it the oldest are dropped and counted
	// under "commit_failed". Default 100000.
	CarryLimit int

	// HeadMaxReadings, HeadMaxBytes and CheckpointInterval bound the head
	// (readings in the log and in memory, not yet in bbolt): a checkpoint
	// moves it into bbolt when it holds this many readings, when the log
	// holds this many bytes since the last checkpoint, or when its oldest
	// reading is this old. Defaults 100000 readings (about 8 MiB of memory),
	// 16 MiB and 10 minutes: sized for a 512 MB Pi Zero 2 W. While
	// checkpoints fail (a full disk) the head may grow to twice the bounds;
	// then writes are refused with ErrBehind.
	HeadMaxReadings    int
	HeadMaxBytes       int64
	CheckpointInterval time.Duration
	// SegmentSize is the size of the log's segment files. Default MaxBytes
	// / 64, between 64 KiB and 8 MiB.
	SegmentSize int64
	// LogFS is the log's file layer. Default the operating system's
	// (tests inject storetest.CrashFS).
	LogFS wal.FS

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

	// openBolt opens the bbolt file (tests inject failures).
	openBolt func(path string, opts Options) (*bolt.DB, error)
}

// Defaults of the options that the daemon's configuration exposes.
const (
	// DefaultMaxBytes is the default hard cap on the store's data.
	DefaultMaxBytes = 1 << 30
	// DefaultCommitInterval bounds how long queued readings wait for a sync.
	DefaultCommitInterval = time.Second
	// DefaultHeadMaxReadings, DefaultHeadMaxBytes and
	// DefaultCheckpointInterval bound the head.
	DefaultHeadMaxReadings    = 100000
	DefaultHeadMaxBytes       = 16 << 20
	DefaultCheckpointInterval = 10 * time.Minute
	// MaxSyncWindow is the longest sync window the store accepts: well
	// below the broker's 10 s commit timeout, so that a PUBACK held for a
	// window is never refused for it.
	MaxSyncWindow = 5 * time.Second
)

// maxBytes32 is the largest store a 32-bit process can map: the address
// space is about 3 GB and bbolt maps the whole file.
const maxBytes32 = 1536 << 20

func (o Options) withDefaults() Options {
	if o.CommitInterval <= 0 {
		o.CommitInterval = DefaultCommitInterval
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
	if o.HeadMaxReadings <= 0 {
		o.HeadMaxReadings = DefaultHeadMaxReadings
	}
	if o.HeadMaxBytes <= 0 {
		o.HeadMaxBytes = DefaultHeadMaxBytes
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = DefaultCheckpointInterval
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
	if o.SegmentSize <= 0 {
		o.SegmentSize = min(max(o.MaxBytes/64, wal.MinSegmentSize), wal.DefaultSegmentSize)
	}
	if o.openBolt == nil {
		o.openBolt = openBolt
	}
	return o
}

// walOptions configure the store's log: a directory next to the bbolt file.
func (o Options) walOptions() wal.Options {
	return wal.Options{Dir: o.Path + ".wal", SegmentSize: o.SegmentSize, FS: o.LogFS,
		Logger: o.Logger.With("part", "wal")}
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
	case o.SegmentSize < wal.MinSegmentSize:
		return fmt.Errorf("store: log segment size %d bytes is below the %d minimum", o.SegmentSize, wal.MinSegmentSize)
	case o.SyncWindow < 0 || o.SyncWindow > MaxSyncWindow:
		return fmt.Errorf("store: sync window %s: want between 0 and %s", o.SyncWindow, MaxSyncWindow)
	}
	return nil
}

// boltOptions are chosen, not defaulted:
//   - Timeout: a second fieldgate on the same file fails fast instead of hanging.
//   - FreelistType hashmap: stays fast when retention fragments the file.
//   - The freelist is synced: readings reach bbolt only in checkpoints, so
//     commits are rare and writing the freelist with each costs little,
//     while NoFreelistSync would make every Open read the whole file to
//     rebuild it (seconds for a large store not in the page cache).
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
		InitialMmapSize: mmap,
		MaxSize:         int(o.MaxBytes + o.MaxBytes/8 + 4<<20),
	}
}
