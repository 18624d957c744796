package httpapi

import (
	"errors"
	"time"
)

// SensorHealth is one local sensor's state as the API reports it.
type SensorHealth struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	Driver string `json:"driver"`
	// State is "starting", "ok", "degraded" or "failing".
	State       string    `json:"state"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	LastGood    time.Time `json:"last_good,omitzero"`
	// Frozen lists quantities stuck at one value for hours.
	Frozen []string `json:"frozen,omitempty"`
}

// ErrBusy, wrapped by a dependency's error, says "try again shortly": the
// API answers 503 with Retry-After and the error's message.
var ErrBusy = errors.New("busy")

// BrokerStats is what the API reports of the MQTT broker.
type BrokerStats struct {
	Clients  int64  `json:"clients"`
	Messages uint64 `json:"messages"`
	Readings uint64 `json:"readings"`
	// Rejected counts refused payloads, packets, logins and publishes.
	Rejected uint64 `json:"rejected"`
	// Refused breaks Rejected and the refused sockets down by reason
	// ("login", "login_throttled", "acl", …), for /metrics.
	Refused map[string]uint64 `json:"-"`
}

// UplinkStatus is what the API reports of the replay to the cloud.
type UplinkStatus struct {
	// State is "starting", "online", "held", "offline", "unauthorized" or
	// "redirected".
	State          string
	OfflineSince   time.Time
	LastSuccess    time.Time
	LastError      string
	LastErrorAt    time.Time
	Backlog        uint64
	OldestUnsent   time.Time
	DrainRate      float64
	EstimatedDrain time.Duration
	Sent, Retries  uint64
	DeadLettered   uint64
	// HeldForClock counts unsent readings waiting for the clock to sync;
	// Held says so in words (why, until when, how to change it), and
	// HoldLeft is how long until they go flagged unsynced (0: no limit).
	HeldForClock uint64
	Held         string
	HoldLeft     time.Duration
}

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
}
