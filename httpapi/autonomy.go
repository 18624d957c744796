package httpapi

import (
	"fmt"
	"math"
	"time"

	"fieldgate/store"
)

// autonomyBody answers the question a technician leaving a site asks: with
// the uplink down, how long until the store is full of readings the cloud
// never got, and drop_oldest starts discarding them.
type autonomyBody struct {
	// Summary says it in words.
	Summary string `json:"summary"`
	// Seconds is the autonomy at the current rate; absent while unknown.
	Seconds *float64 `json:"seconds,omitempty"`
	// IngestPerHour is readings stored per hour over the last hour.
	IngestPerHour float64 `json:"ingest_per_hour"`
	// BytesPerReading is measured from the store file.
	BytesPerReading float64 `json:"bytes_per_reading"`
	// CapacityReadings is how many readings fit under store.max_size and
	// in the file system's free space; RoomReadings how many more fit
	// beside the unsent ones.
	CapacityReadings int64 `json:"capacity_readings"`
	RoomReadings     int64 `json:"room_readings"`
	DiskFree         int64 `json:"disk_free_bytes"`
	// OfflineSeconds is how long the uplink has been down, and UsedFraction
	// the share of the capacity its backlog takes.
	OfflineSeconds float64 `json:"offline_seconds,omitempty"`
	UsedFraction   float64 `json:"used_fraction"`
	// WarnBelowSeconds is the threshold under which health warns.
	WarnBelowSeconds float64 `json:"warn_below_seconds"`
}

// autonomyInput is what the estimate needs: the store's figures, the
// unsent readings and since when the uplink is down (zero: it is up).
type autonomyInput struct {
	st           store.Stats
	uplink       bool
	backlog      uint64
	offlineSince time.Time
	now          time.Time
	warnBelow    time.Duration
}

// autonomy estimates it from the store's figures and the uplink's (state,
// backlog, offline since) for /status and /metrics.
func (s *Server) autonomy(st store.Stats, uplink bool, backlog uint64, state string, offlineSince, now time.Time) (autonomyBody, string) {
	in := autonomyInput{st: st, uplink: uplink, backlog: backlog, now: now, warnBelow: s.opts.AutonomyWarning}
	if state != "online" && state != "starting" {
		in.offlineSince = offlineSince
	}
	return estimateAutonomy(in)
}

// estimateAutonomy estimates it and returns the health reason, if any, to
// add.
func estimateAutonomy(in autonomyInput) (autonomyBody, string) {
	st := in.st
	b := autonomyBody{IngestPerHour: math.Round(st.IngestPerHour*10) / 10, BytesPerReading: math.Round(st.BytesPerReading*10) / 10,
		DiskFree: st.DiskFree, WarnBelowSeconds: in.warnBelow.Seconds()}
	if !in.offlineSince.IsZero() {
		b.OfflineSeconds = max(0, in.now.Sub(in.offlineSince).Round(time.Second).Seconds())
	}
	if st.BytesPerReading <= 0 {
		b.Summary = "not known yet: no reading is in the store file to measure"
		return b, ""
	}
	room := float64(st.UsedBytes + st.DiskFree)
	if st.MaxBytes > 0 {
		room = min(room, float64(st.MaxBytes))
	}
	b.CapacityReadings = int64(room / st.BytesPerReading)
	unsent := int64(0)
	if in.uplink {
		unsent = int64(in.backlog)
	}
	b.RoomReadings = max(0, b.CapacityReadings-unsent)
	if b.CapacityReadings > 0 {
		b.UsedFraction = math.Round(float64(unsent)/float64(b.CapacityReadings)*1000) / 1000
	}
	switch {
	case !st.IngestKnown:
		b.Summary = "not known yet: the ingest rate is measured over the first minute"
		return b, ""
	case st.IngestPerHour == 0:
		b.Summary = "unlimited: no readings arrived in the last hour"
		return b, ""
	}
	d := time.Duration(float64(b.RoomReadings) / st.IngestPerHour * float64(time.Hour))
	secs := d.Round(time.Second).Seconds()
	b.Seconds = &secs
	rate := fmt.Sprintf("%s readings/h", groupThousands(int64(math.Round(st.IngestPerHour))))
	switch {
	case !in.uplink:
		b.Summary = fmt.Sprintf("no uplink: the store holds about %s of readings at the current rate (%s); then the oldest are deleted", roughly(time.Duration(float64(b.CapacityReadings)/st.IngestPerHour*float64(time.Hour))), rate)
		return b, ""
	case b.OfflineSeconds > 0:
		b.Summary = fmt.Sprintf("offline for %s, %.0f%% of the buffer used: about %s left at the current rate (%s)",
			roughly(time.Duration(b.OfflineSeconds)*time.Second), b.UsedFraction*100, roughly(d), rate)
	default:
		b.Summary = fmt.Sprintf("about %s offline at the current rate (%s)", roughly(d), rate)
	}
	if in.warnBelow > 0 && d < in.warnBelow {
		return b, fmt.Sprintf("the buffer holds only about %s more of readings the cloud has not got (warning below %s): then the oldest are dropped. Raise store.max_size or free disk space",
			roughly(d), roughly(in.warnBelow))
	}
	return b, ""
}

// roughly says a duration the way a person would: "41 days", "5 hours".
func roughly(d time.Duration) string {
	n, unit := rounded(d)
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// groupThousands writes n with thousands separators: 17,280.
func groupThousands(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
