package main

import (
	"time"

	"fieldgate/store/clock"
)

// ClockConfig says when the system clock is trusted; see package clock.
type ClockConfig struct {
	// Trust is "ntp" (a Pi without real-time clock: trusted once NTP synced
	// it) or "system" (an RTC or a PC: trusted unless before the build date
	// or the newest stored reading).
	Trust string `yaml:"trust"`
	// UploadHold is how long after boot readings taken before the sync wait
	// for it, so that the cloud gets them with repaired times.
	UploadHold Duration `yaml:"upload_hold"`
}

func defaultClock() ClockConfig {
	return ClockConfig{Trust: string(clock.TrustNTP), UploadHold: Duration(24 * time.Hour)}
}

func validateClock(c ClockConfig, add func(path, format string, args ...any)) {
	switch clock.Trust(c.Trust) {
	case clock.TrustNTP, clock.TrustSystem:
	default:
		add("clock.trust", "%q: want ntp (no real-time clock: wait for NTP) or system (trust the clock, e.g. with an RTC)", c.Trust)
	}
	if d := time.Duration(c.UploadHold); d < time.Minute || d > 30*24*time.Hour {
		add("clock.upload_hold", "%s: want between 1m and 720h", d)
	}
}
