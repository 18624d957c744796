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
		{"one report missed", store.Device{LastReading: now.Add(-12 * time.Minute), ReportInterval: 5 * time.Minute}, deviceLate, "late: last reading 12 minutes ago"},
		{"gone quiet", store.Device{LastReading: now.Add(-time.Hour), ReportInterval: 5 * time.Minute}, deviceSilent, "silent for 12× its usual interval of 5 minutes"},
		{"stored before last readings were kept", store.Device{LastSeen: now.Add(-time.Minute), Readings: 10}, deviceOK, "first report"},
	} {
		state, why := deviceState(c.d, now)
		if state != c.state || len(why) < len(c.why) || why[:len(c.why)] != c.why {
			t.Errorf("%s: %s %q, want %s %q…", c.name, state, why, c.state, c.why)
		}
	}
}
