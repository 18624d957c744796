package httpapi

import (
	"errors"
	"time"
)

// ErrBusy, wrapped by a dependency's error, says "try again shortly": the
// API answers 503 with Retry-After and the error's message.
var ErrBusy = errors.New("busy")

// ClockState says whether the system clock can be trusted.
type ClockState string

// Clock states.
const (
	ClockSynced   ClockState = "synced"
	ClockUnsynced ClockState = "unsynced"
	ClockUnknown  ClockState = "unknown"
)

// ClockInfo is the clock as the gateway's tracker sees it.
type ClockInfo struct {
	State ClockState
	// Reason says, while unsynced, why and what happens to readings.
	Reason string
	// SyncedAt is when the clock was found synchronised; Step how far it
	// moved then (zero if it was synced from the start).
	SyncedAt time.Time
	Step     time.Duration
	// HoldLeft is, while readings wait for the sync, how long until they
	// go to the cloud flagged unsynced (clock.upload_hold).
	HoldLeft time.Duration
}
