package httpapi

import (
	"strings"
	"testing"
	"time"

	"fieldgate/store"
)

// "How long can this site stay offline?" with a small store.max_size and a
// known rate, worked by hand.
func TestAutonomy(t *testing.T) {
	now := t0
	small := store.Stats{MaxBytes: 1 << 20, UsedBytes: 200_000, DiskFree: 10 << 30, BytesPerReading: 100,
		IngestPerHour: 720, IngestKnown: true, Readings: 2000, LastSeq: 2000}
	for _, c := range []struct {
		name     string
		in       autonomyInput
		seconds  float64 // -1: unknown
		room     int64
		summary  string
		warnings bool
	}{
		{"online: 10,485 readings fit, at 720/h", autonomyInput{st: small, uplink: true},
			10485.0 / 720 * 3600, 10485, "about 15 hours offline at the current rate (720 readings/h)", true},
		{"offline 3 h with 2,160 unsent", autonomyInput{st: small, uplink: true, backlog: 2160, offlineSince: now.Add(-3 * time.Hour)},
			8325.0 / 720 * 3600, 8325, "offline for 3 hours, 21% of the buffer used: about 12 hours left at the current rate (720 readings/h)", true},
		{"the disk is smaller than max_size", autonomyInput{st: func() store.Stats { s := small; s.DiskFree = 300_000; return s }(), uplink: true},
			5000.0 / 720 * 3600, 5000, "about 7 hours offline", true},
		{"a big store needs no warning", autonomyInput{st: func() store.Stats { s := small; s.MaxBytes = 1 << 30; return s }(), uplink: true},
			10737418.0 / 720 * 3600, 10737418, "about 621 days offline", false},
		{"no uplink: how long the store keeps readings", autonomyInput{st: small},
			10485.0 / 720 * 3600, 10485, "no uplink: the store holds about 15 hours of readings", false},
		{"rate not measured yet", autonomyInput{st: func() store.Stats { s := small; s.IngestKnown, s.IngestPerHour = false, 0; return s }(), uplink: true},
			-1, 10485, "not known yet: the ingest rate is measured over the first minute", false},
		{"nothing arrives", autonomyInput{st: func() store.Stats { s := small; s.IngestPerHour = 0; return s }(), uplink: true},
			-1, 10485, "unlimited: no readings arrived in the last hour", false},
		{"nothing in the store file yet", autonomyInput{st: func() store.Stats { s := small; s.BytesPerReading = 0; return s }(), uplink: true},
			-1, 0, "not known yet: no reading is in the store file", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.in.now, c.in.warnBelow = now, 7*24*time.Hour
			b, warn := estimateAutonomy(c.in)
			switch {
			case c.seconds < 0 && b.Seconds != nil:
				t.Errorf("seconds %v, want unknown", *b.Seconds)
			case c.seconds >= 0 && (b.Seconds == nil || *b.Seconds < c.seconds-1 || *b.Seconds > c.seconds+1):
				t.Errorf("seconds %v, want %.0f", b.Seconds, c.seconds)
			}
			if b.RoomReadings != c.room || !strings.HasPrefix(b.Summary, c.summary) {
				t.Errorf("room %d, summary %q; want %d, %q…", b.RoomReadings, b.Summary, c.room, c.summary)
			}
			if (warn != "") != c.warnings || (warn != "" && !strings.Contains(warn, "Raise store.max_size or free disk space")) {
				t.Errorf("warning %q", warn)
			}
		})
	}
}

// The estimate reaches /status (health warns under the threshold) and
// /metrics through the real store.
func TestStatusReportsAutonomy(t *testing.T) {
	e := newEnv(t, Options{AutonomyWarning: 30 * 24 * time.Hour, Config: Config{OpenReads: true}})
	var st statusBody
	e.do(req{method: "GET", path: "/api/v1/status"}).json(t, &st)
	if st.Autonomy.Summary == "" || st.Autonomy.DiskFree <= 0 || st.Autonomy.WarnBelowSeconds != 30*24*3600 {
		t.Errorf("autonomy = %+v", st.Autonomy)
	}
	m := e.do(req{method: "GET", path: "/metrics", role: RoleViewer})
	for _, want := range []string{"fieldgate_ingest_readings_per_hour ", "fieldgate_store_bytes_per_reading ", "fieldgate_store_disk_free_bytes "} {
		if !strings.Contains(string(m.body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
