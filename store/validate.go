package store

import (
	"fmt"
	"strconv"
	"time"
)

// Validate reports every option out of the ranges a configuration may
// choose to problem, naming the field, for options as a configuration
// states them (DefaultOptions-style values, every limit explicit). Open
// checks less (tests use a
// tiny head or checkpoint interval on purpose); the 32-bit mapping limit
// is checked by Open on the machine that opens the store.
func (o Options) Validate(problem func(field, msg string)) {
	p := func(field, format string, args ...any) { problem(field, fmt.Sprintf(format, args...)) }
	if o.CommitInterval < time.Millisecond || o.CommitInterval > time.Minute {
		p("CommitInterval", "%s: want between 1ms and 1m (it bounds what a crash may lose)", o.CommitInterval)
	}
	if o.SyncWindow < 0 || o.SyncWindow > MaxSyncWindow {
		p("SyncWindow", "%s: want between 0 (sync as soon as a reading waits) and %s", o.SyncWindow, MaxSyncWindow)
	}
	if o.HeadMaxReadings < 1000 || o.HeadMaxReadings > 10_000_000 {
		p("HeadMaxReadings", "%d: want between 1000 and 10000000 (each costs about 80 bytes of memory)", o.HeadMaxReadings)
	}
	if o.HeadMaxBytes < 1<<20 || o.HeadMaxBytes > 1<<30 {
		p("HeadMaxBytes", "%s: want between 1MiB and 1GiB", FormatSize(o.HeadMaxBytes))
	}
	if o.CheckpointInterval < 10*time.Second || o.CheckpointInterval > 24*time.Hour {
		p("CheckpointInterval", "%s: want between 10s and 24h", o.CheckpointInterval)
	}
	if o.MaxBytes < 1<<20 {
		p("MaxBytes", "%s: want at least 1MiB", FormatSize(o.MaxBytes))
	}
	if o.FullPolicy != FullDropOldest && o.FullPolicy != FullRejectNew {
		p("FullPolicy", "%q: want %s or %s", o.FullPolicy, FullDropOldest, FullRejectNew)
	}
	if o.RetainAge < 0 {
		p("RetainAge", "must not be negative (0 keeps uploaded readings regardless of age)")
	}
	if o.RetainBytes < 0 || o.RetainBytes > o.MaxBytes {
		p("RetainBytes", "%s: want between 0 and store.max_size (%s)", FormatSize(o.RetainBytes), FormatSize(o.MaxBytes))
	}
	if o.CompactRatio < 1.2 {
		p("CompactRatio", "%v: want at least 1.2 (compacting a file that is not bloated only wears the SD card)", o.CompactRatio)
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
