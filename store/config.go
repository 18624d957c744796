package store

import (
	"fmt"
	"strconv"
	"time"
)

// Config is the store's section of the configuration file (store:), one
// field per key: the daemon decodes the file straight into it. Sizes are
// bytes (the file writes them like 512MiB; the tag config:"size" says so).
type Config struct {
	// CommitInterval bounds how long a queued (Enqueue) reading may wait for
	// the log's sync: at most this much queued data is lost in a power cut.
	// A longer SyncWindow stretches it: no sync starts sooner than
	// SyncWindow after the last.
	CommitInterval time.Duration `yaml:"commit_interval"`
	// SyncWindow is the least time between the starts of two syncs of the
	// log. 0 syncs as soon as the previous sync ended and someone waits; a
	// longer window makes a waiting Append (a PUBACK) wait up to that long
	// so that fewer syncs write the same block again: fewer bytes on an SD
	// card.
	SyncWindow time.Duration `yaml:"sync_window"`
	// Head bounds the readings in the log and in memory, not yet in bbolt.
	Head HeadConfig `yaml:"head"`
	// MaxSize is the hard cap on the store's data.
	MaxSize int64 `yaml:"max_size" config:"size"`
	// FullPolicy applies when un-uploaded data alone reaches MaxSize.
	FullPolicy FullPolicy `yaml:"full_policy"`
	// Retention bounds how long uploaded readings are kept.
	Retention RetentionConfig `yaml:"retention"`
	// CompactRatio triggers compaction when the file is this many times
	// larger than its live data (and at least Options.CompactMinBytes
	// larger).
	CompactRatio float64 `yaml:"compact_ratio"`
}

// HeadConfig bounds the head: a checkpoint moves it into bbolt when it
// holds MaxReadings, when the log holds MaxBytes since the last checkpoint,
// or when its oldest reading is MaxAge old. The defaults (100000 readings,
// about 8 MiB of memory; 16 MiB; 10 minutes) are sized for a 512 MB Pi
// Zero 2 W. While checkpoints fail (a full disk) the head may grow to
// twice the bounds; then writes are refused with ErrBehind.
type HeadConfig struct {
	MaxReadings int           `yaml:"max_readings"`
	MaxBytes    int64         `yaml:"max_bytes" config:"size"`
	MaxAge      time.Duration `yaml:"max_age"`
}

// RetentionConfig bounds how long uploaded readings are kept.
type RetentionConfig struct {
	// MaxAge deletes uploaded readings older than this; 0 keeps them by
	// age.
	MaxAge time.Duration `yaml:"max_age"`
	// MaxSize deletes the oldest uploaded readings while the store's data
	// exceeds this; 0 means only Config.MaxSize applies.
	MaxSize int64 `yaml:"max_size" config:"size"`
}

// MaxSyncWindow is the longest sync window the store accepts: well below
// the broker's 10 s commit timeout, so that a PUBACK held for a window is
// never refused for it.
const MaxSyncWindow = 5 * time.Second

// DefaultConfig returns the store's defaults. Open uses them for every
// zero field but Retention's and SyncWindow's, whose zero has a meaning.
func DefaultConfig() Config {
	return Config{
		CommitInterval: time.Second,
		Head:           HeadConfig{MaxReadings: 100000, MaxBytes: 16 << 20, MaxAge: 10 * time.Minute},
		MaxSize:        1 << 30,
		FullPolicy:     FullDropOldest,
		Retention:      RetentionConfig{MaxAge: 30 * 24 * time.Hour},
		CompactRatio:   2,
	}
}

// maxBytes32 is the largest store a 32-bit process can map: the address
// space is about 3 GB and bbolt maps the whole file.
const maxBytes32 = 1536 << 20

// Validate reports every value out of range to problem, naming its key
// within the section ("head.max_age"). Open refuses what it reports.
func (c Config) Validate(problem func(key, msg string)) {
	c.validate(problem, false, strconv.IntSize)
}

// validate is Validate for a machine with wordBits-bit pointers; anyTiming
// lets tests choose a head, a checkpoint interval and a commit interval
// outside what a configuration may, to make commits and checkpoints happen
// at will.
func (c Config) validate(problem func(key, msg string), anyTiming bool, wordBits int) {
	p := func(key, format string, args ...any) { problem(key, fmt.Sprintf(format, args...)) }
	if (c.CommitInterval < time.Millisecond || c.CommitInterval > time.Minute) && !anyTiming {
		p("commit_interval", "%s: want between 1ms and 1m (it bounds what a crash may lose)", c.CommitInterval)
	}
	if c.SyncWindow < 0 || c.SyncWindow > MaxSyncWindow {
		p("sync_window", "%s: want between 0 (sync as soon as a reading waits) and %s", c.SyncWindow, MaxSyncWindow)
	}
	if h := c.Head; !anyTiming {
		if h.MaxReadings < 1000 || h.MaxReadings > 10_000_000 {
			p("head.max_readings", "%d: want between 1000 and 10000000 (each costs about 80 bytes of memory)", h.MaxReadings)
		}
		if h.MaxBytes < 1<<20 || h.MaxBytes > 1<<30 {
			p("head.max_bytes", "%s: want between 1MiB and 1GiB", FormatSize(h.MaxBytes))
		}
		if h.MaxAge < 10*time.Second || h.MaxAge > 24*time.Hour {
			p("head.max_age", "%s: want between 10s and 24h", h.MaxAge)
		}
	}
	switch {
	case c.MaxSize < 1<<20:
		p("max_size", "%s: want at least 1MiB", FormatSize(c.MaxSize))
	case wordBits == 32 && c.MaxSize > maxBytes32:
		p("max_size", "%s: a 32-bit system can map at most %s", FormatSize(c.MaxSize), FormatSize(maxBytes32))
	}
	if c.FullPolicy != FullDropOldest && c.FullPolicy != FullRejectNew {
		p("full_policy", "%q: want %s or %s", c.FullPolicy, FullDropOldest, FullRejectNew)
	}
	if c.Retention.MaxAge < 0 {
		p("retention.max_age", "must not be negative (0 keeps uploaded readings regardless of age)")
	}
	if c.Retention.MaxSize < 0 || c.Retention.MaxSize > c.MaxSize {
		p("retention.max_size", "%s: want between 0 and store.max_size (%s)", FormatSize(c.Retention.MaxSize), FormatSize(c.MaxSize))
	}
	if c.CompactRatio < 1.2 {
		p("compact_ratio", "%v: want at least 1.2 (compacting a file that is not bloated only wears the SD card)", c.CompactRatio)
	}
}

// FormatSize writes a byte count the way a configuration states it: in the
// largest binary unit that divides it exactly (512KiB, 2GiB, 1000B).
func FormatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
