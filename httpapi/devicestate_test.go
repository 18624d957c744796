package httpapi

import (
	"testing"
	"time"

	"fieldgate/store"
)

// A deep-sleep node (connect, publish, disconnect) was shown red OFFLINE and
// turned the gateway "Needs attention"; so was a device just added. Now a
// device is judged by its readings arriving when expected.
func TestDeviceState(t *testing.T) {
	now := t0
	for _, c := range []struct {
		name       string
		d          store.Device
		state, why string
	}{
		{"just added", store.Device{CreatedAt: now.Add(-time.Hour)}, deviceWaiting, "waiting for its first reading"},
		{"one report", store.Device{LastReading: now.Add(-3 * time.Hour)}, deviceOK, "first report 3 hours ago"},
		{"sleepy node between reports", store.Device{LastReading: now.Add(-4 * time.Minute), ReportInterval: 5 * time.Minute}, deviceOK, "reports every 5 minutes"},
		{"one report missed", store.Device{LastReading: now.Add(-12 * time.Minute), ReportInterval: 5 * time.Minute}, deviceLate, "late: no reading for 12 minutes; it usually reports every 5 minutes"},
		{"gone quiet", store.Device{LastReading: now.Add(-25 * time.Minute), ReportInterval: time.Minute, IntervalSamples: 40}, deviceSilent, "silent: no reading for 25 minutes; it usually reports every minute"},
		// Tried by hand: three publishes a second apart, then nothing. Not
		// judged by a 1 s interval learned from two gaps.
		{"tried by hand", store.Device{LastReading: now.Add(-2 * time.Minute), ReportInterval: time.Second, IntervalSamples: 2}, deviceOK, "it reported 3 times so far, about every second; learning its interval"},
		{"tried by hand, long ago", store.Device{LastReading: now.Add(-30 * time.Minute), ReportInterval: time.Second, IntervalSamples: 2}, deviceLate, "late: no reading for 30 minutes; it reported 3 times so far"},
		{"learned", store.Device{LastReading: now.Add(-2 * time.Minute), ReportInterval: time.Second, IntervalSamples: 5}, deviceSilent, "silent: no reading for 2 minutes; it usually reports every second"},
		{"stored before last readings were kept", store.Device{LastSeen: now.Add(-time.Minute), Readings: 10}, deviceOK, "first report"},
	} {
		state, why := deviceState(c.d, now)
		if state != c.state || len(why) < len(c.why) || why[:len(c.why)] != c.why {
			t.Errorf("%s: %s %q, want %s %q…", c.name, state, why, c.state, c.why)
		}
	}
}
