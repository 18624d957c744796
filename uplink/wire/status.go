package wire

import (
	"fmt"
	"time"
)

// StatusBody is the JSON body of a gateway's status PUT: how far behind it
// is and how it is doing, for the fleet view of an operator with many
// gateways. It is not part of any batch (a batch's body must stay the same
// on every retry), and sending it is best effort.
type StatusBody struct {
	Gateway     string `json:"gateway"`
	Incarnation string `json:"incarnation,omitempty"`
	// At is when the gateway took the status: a receiver keeps the newest.
	At string `json:"at"`
	// Backlog is how many stored readings the cloud has not acknowledged;
	// OldestUnsent the time of the oldest of them (absent when none).
	Backlog      uint64 `json:"backlog"`
	OldestUnsent string `json:"oldest_unsent,omitempty"`
	// Clock is "synced" or "unsynced"; Health "ok", "degraded" or
	// "failing".
	Clock  string `json:"clock"`
	Health string `json:"health"`
	// AutonomySeconds is how much longer the gateway can buffer without
	// the cloud before it drops readings (0: not known yet).
	AutonomySeconds float64 `json:"autonomy_seconds"`
	Version         string  `json:"version"`
}

// StatusPath is a gateway's status path under the uplink URL.
func StatusPath(gateway string) string { return "/v1/gateways/" + gateway + "/status" }

// Check says what is wrong with a status body for gateway, or "".
func (s StatusBody) Check(gateway string) string {
	switch {
	case s.Gateway != gateway:
		return fmt.Sprintf("gateway %q in the body, %q in the URL", s.Gateway, gateway)
	case !ValidIncarnation(s.Incarnation):
		return fmt.Sprintf("incarnation %q: want 16 to 32 lowercase hex digits", s.Incarnation)
	case s.Clock != "synced" && s.Clock != "unsynced":
		return fmt.Sprintf("clock %q: want synced or unsynced", s.Clock)
	case s.Health != "ok" && s.Health != "degraded" && s.Health != "failing":
		return fmt.Sprintf("health %q: want ok, degraded or failing", s.Health)
	case s.AutonomySeconds < 0 || len(s.Version) > 64:
		return "autonomy_seconds below 0, or a version over 64 bytes"
	}
	for name, v := range map[string]string{"at": s.At, "oldest_unsent": s.OldestUnsent} {
		if v == "" && name == "oldest_unsent" {
			continue
		}
		if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
			return fmt.Sprintf("%s %q: want an RFC 3339 time", name, v)
		}
	}
	return ""
}
