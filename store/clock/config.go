package clock

import (
	"fmt"
	"time"
)

// Config is the clock section of the configuration file (clock:), one
// field per key: the daemon decodes the file straight into it.
type Config struct {
	// Trust is the policy: TrustNTP (a Pi without real-time clock: trusted
	// once NTP synced it) or TrustSystem (an RTC or a PC: trusted unless
	// before the floor).
	Trust Trust `yaml:"trust"`
	// UploadHold is how long after boot the tracker waits for a sync
	// before it gives up: pending readings are released flagged unsynced,
	// and later ones are no longer held for repair. So that the cloud gets
	// readings with repaired times, they wait that long for it.
	UploadHold time.Duration `yaml:"upload_hold"`
}

// DefaultConfig returns the clock's defaults; New uses them for zero
// fields.
func DefaultConfig() Config {
	return Config{Trust: TrustNTP, UploadHold: 24 * time.Hour}
}

// Validate reports every value out of range to problem, naming its key
// within the section ("trust").
func (c Config) Validate(problem func(key, msg string)) {
	switch c.Trust {
	case TrustNTP, TrustSystem:
	default:
		problem("trust", fmt.Sprintf("%q: want ntp (no real-time clock: wait for NTP) or system (trust the clock, e.g. with an RTC)", c.Trust))
	}
	if d := c.UploadHold; d < time.Minute || d > 30*24*time.Hour {
		problem("upload_hold", fmt.Sprintf("%s: want between 1m and 720h", d))
	}
}
