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
	// learnFrom is how many gaps between reports make a learned interval
	// trusted; until then a node is expected at least every provisional
	// (a node tried by hand with three quick publishes must not turn red
	// seconds later).
	learnFrom   = 5
	provisional = 10 * time.Minute
)

// deviceState says how device d is doing at now, and why in words a
// technician reads at a glance.
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
		return deviceOK, fmt.Sprintf("first report %s ago; its interval is learned from the next ones", roughly(since))
	}
	// Devices stored before the samples were counted have 0: trusted.
	learning := d.IntervalSamples > 0 && d.IntervalSamples < learnFrom
	expected, usual := iv, "it usually reports "+every(iv)
	if learning {
		expected = max(iv, provisional)
		usual = fmt.Sprintf("it reported %d times so far, about %s", d.IntervalSamples+1, every(iv))
	}
	switch {
	case since <= lateAfter*expected+stateSlack && learning:
		return deviceOK, usual + "; learning its interval"
	case since <= lateAfter*expected+stateSlack:
		return deviceOK, "reports " + every(iv)
	case since <= silentAfter*expected+stateSlack:
		return deviceLate, fmt.Sprintf("late: no reading for %s; %s", roughly(since), usual)
	default:
		return deviceSilent, fmt.Sprintf("silent: no reading for %s; %s", roughly(since), usual)
	}
}

// every says how often something happens every d: "every second",
// "every 10 seconds", "every minute", "every 3 hours".
func every(d time.Duration) string {
	n, unit := rounded(d)
	if n == 1 {
		return "every " + unit
	}
	return fmt.Sprintf("every %d %ss", n, unit)
}

// rounded is d in the largest unit that keeps it readable.
func rounded(d time.Duration) (int, string) {
	switch {
	case d >= 36*time.Hour:
		return int(d.Hours()/24 + 0.5), "day"
	case d >= 90*time.Minute:
		return int(d.Hours() + 0.5), "hour"
	case d >= time.Minute:
		return int(d.Minutes() + 0.5), "minute"
	default:
		return max(1, int(d.Seconds()+0.5)), "second"
	}
}
