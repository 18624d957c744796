package sensors

import (
	"errors"
	"strings"
	"time"

	"fieldgate/sensors/am2320"
	"fieldgate/sensors/sensirion"
)

// State is a sensor's health at a glance.
type State string

// Health states.
const (
	// StateStarting: not polled yet.
	StateStarting State = "starting"
	// StateOK: the last poll succeeded with plausible values.
	StateOK State = "ok"
	// StateDegraded: one or two failures in a row, an implausible value in
	// the last poll, or a value frozen for hours.
	StateDegraded State = "degraded"
	// StateFailing: three or more failures in a row, or the sensor could not
	// be opened at all.
	StateFailing State = "failing"
)

// failingAfter consecutive failures make a sensor failing (and closed, so
// that the next attempt re-initialises the chip).
const failingAfter = 3

// Kinds of failure, counted per sensor.
const (
	FailOpen        = "open"        // the bus or the chip could not be opened
	FailBus         = "bus"         // NACK, I/O error
	FailCRC         = "crc"         // data corrupted on the wire
	FailTimeout     = "timeout"     // the read did not finish in time
	FailImplausible = "implausible" // a physically impossible value, rejected
)

// Health is what is known about one sensor, for the API and metrics.
type Health struct {
	Name   string
	Source string
	Driver string
	State  State
	// LastError and LastErrorAt describe the most recent failure.
	LastError   string
	LastErrorAt time.Time
	// LastGood is when the sensor last returned plausible values.
	LastGood            time.Time
	ConsecutiveFailures int
	// Polls counts attempts; Failures counts failed ones by kind
	// (FailOpen, FailBus, …) and implausible values rejected.
	Polls    uint64
	Failures map[string]uint64
	// Frozen lists quantities whose value has not changed for hours on a
	// sensor that normally jitters: a stuck or dead sensing element.
	Frozen []string
}

// classify names the kind of a read error.
func classify(err error) string {
	var sc *sensirion.CRCError
	var ac *am2320.CRCError
	switch {
	case errors.Is(err, errReadTimeout):
		return FailTimeout
	case errors.As(err, &sc), errors.As(err, &ac), strings.Contains(strings.ToLower(err.Error()), "crc"):
		// periph's drivers report CRC errors with unexported types.
		return FailCRC
	default:
		return FailBus
	}
}

// state derives the health state.
func (h *Health) state(implausible bool) State {
	switch {
	case h.ConsecutiveFailures >= failingAfter:
		return StateFailing
	case h.ConsecutiveFailures > 0, implausible, len(h.Frozen) > 0:
		return StateDegraded
	default:
		return StateOK
	}
}

// frozenTracker notices a value that stops changing on a sensor that
// normally jitters.
type frozenTracker struct {
	last    float64
	since   time.Time
	changes int
}

// minChanges is how many changes a quantity must have shown before a
// constant value counts as frozen: some sensors legitimately sit still.
const minChanges = 10

// observe records v at t and reports whether the value is frozen.
func (f *frozenTracker) observe(v float64, t time.Time, after time.Duration) bool {
	if f.since.IsZero() || v != f.last {
		if !f.since.IsZero() {
			f.changes++
		}
		f.last, f.since = v, t
		return false
	}
	return f.changes >= minChanges && t.Sub(f.since) >= after
}
