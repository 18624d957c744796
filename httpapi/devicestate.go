package httpapi

import (
	"fmt"
	"time"

	"fieldgate/store"
)

// A device is judged by whether its readings arrive when expected, not by
// its MQTT session: a deep-sleep node connects, publishes and disconnects
// every time, and mosquitto_pub does the same.
const (
	deviceWaiting = "waiting" // no reading yet: not an alarm
	deviceOK      = "ok"
	deviceLate    = "late"   // past twice its interval (plus slack)
	deviceSilent  = "silent" // past silentAfter intervals: health says so
)

const (
	lateAfter   = 2
	silentAfter = 6
	// stateSlack absorbs jitter for nodes that report often.
	stateSlack = 30 * time.Second
)

// deviceState says how device d is doing at now, and why in words.
func deviceState(d store.Device, now time.Time) (state, why string) {
	last := d.LastReading
	if last.IsZero() && d.Readings > 0 {
		last = d.LastSeen // stored before fieldgate recorded the last reading
	}
	if last.IsZero() {
		return deviceWaiting, "waiting for its first reading"
	}
	since := now.Sub(last)
	iv := d.ReportInterval
	if iv <= 0 {
		return deviceOK, fmt.Sprintf("first report %s ago; its interval is learned from the next", roughly(since))
	}
	every := fmt.Sprintf("reports every %s", roughly(iv))
	switch {
	case since <= lateAfter*iv+stateSlack:
		return deviceOK, every
	case since <= silentAfter*iv+stateSlack:
		return deviceLate, fmt.Sprintf("late: last reading %s ago, %s", roughly(since), every)
	default:
		return deviceSilent, fmt.Sprintf("silent for %.0f× its usual interval of %s (last reading %s ago)", float64(since)/float64(iv), roughly(iv), roughly(since))
	}
}
