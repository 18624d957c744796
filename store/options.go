package store

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
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

	// Config is what the configuration file sets (the store: section).
	Config
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

	// SegmentSize is the size of the log's segment files. Default MaxSize
	// / 64, between 64 KiB and 8 MiB.
	SegmentSize int64
	// LogFS is the log's file layer. Default the operating system's
	// (tests inject storetest.CrashFS).
	LogFS wal.FS

	// LocalOnly says no uplink is configured: every reading counts as
	// delivered for retention, since nothing will ever upload it.
	LocalOnly bool

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
	// anyTiming lets tests choose a head, a checkpoint interval and a
	// commit interval outside what Validate accepts (see Config.validate).
	anyTiming bool
}

func (o Options) withDefaults() Options {
	d := DefaultConfig()
	if o.CommitInterval <= 0 {
		o.CommitInterval = d.CommitInterval
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
	if o.Head.MaxReadings <= 0 {
		o.Head.MaxReadings = d.Head.MaxReadings
	}
	if o.Head.MaxBytes <= 0 {
		o.Head.MaxBytes = d.Head.MaxBytes
	}
	if o.Head.MaxAge <= 0 {
		o.Head.MaxAge = d.Head.MaxAge
	}
	if o.MaxSize <= 0 {
		o.MaxSize = d.MaxSize
	}
	if o.FullPolicy == "" {
		o.FullPolicy = d.FullPolicy
	}
	if o.CompactRatio <= 0 {
		o.CompactRatio = d.CompactRatio
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
		o.SegmentSize = min(max(o.MaxSize/64, wal.MinSegmentSize), wal.DefaultSegmentSize)
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

// validate refuses what Validate reports, and options only a program sets.
func (o Options) validate() error {
	var problems []string
	o.Config.validate(func(key, msg string) { problems = append(problems, key+": "+msg) }, o.anyTiming, strconv.IntSize)
	switch {
	case o.Path == "":
		problems = append(problems, "no path given")
	case o.SegmentSize < wal.MinSegmentSize:
		problems = append(problems, fmt.Sprintf("log segment size %d bytes is below the %d minimum", o.SegmentSize, wal.MinSegmentSize))
	}
	if len(problems) > 0 {
		return fmt.Errorf("store: %s", strings.Join(problems, "; "))
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
	if int64(mmap) > o.MaxSize {
		mmap = int(o.MaxSize)
	}
	return &bolt.Options{
		Timeout:         time.Second,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: mmap,
		MaxSize:         int(o.MaxSize + o.MaxSize/8 + 4<<20),
	}
}
