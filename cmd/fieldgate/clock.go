package main

import (
	"log/slog"
	"time"

	"fieldgate/store"
	"fieldgate/store/clock"
)

// floorSlack keeps the clock floor below the newest stored reading: a device
// may stamp a little ahead, an RTC may lose a little across a restart.
const floorSlack = time.Hour

// newClock builds the tracker that stamps every reading: trusted per
// cfg.Clock, never before the build date or (less slack) the newest synced
// reading in the store.
func newClock(cfg *Config, st *store.Store, src clock.Source, log *slog.Logger) *clock.Tracker {
	floor, _ := time.Parse(time.RFC3339, date) // "unknown" in a dev build: no floor
	if newest := newestSynced(st, log); newest.Add(-floorSlack).After(floor) {
		floor = newest.Add(-floorSlack)
	}
	t := clock.New(src, st, clock.Options{
		Config: cfg.Clock, Floor: floor, Logger: log,
	})
	if s := t.State(); !s.Synced {
		log.Info("clock not trusted yet: readings are flagged unsynced until it is", "reason", s.Reason)
	}
	return t
}

// newestSynced is the latest time among the last readings stored with a
// synced clock.
func newestSynced(st *store.Store, log *slog.Logger) time.Time {
	last := st.Stats().LastSeq
	rs, err := st.ReadingsAfter(max(last, 1000)-1000, 1000)
	if err != nil {
		log.Warn("cannot read the newest readings for the clock floor", "err", err)
		return time.Time{}
	}
	var newest time.Time
	for _, r := range rs {
		if r.Clock == store.ClockSynced && r.Time.After(newest) {
			newest = r.Time
		}
	}
	return newest
}
