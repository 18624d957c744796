package main

import (
	"fmt"
	"time"

	"fieldgate/store/clock"
)

// holdWords says, when uploads wait for the clock, why, for how long and
// how to change it: one wording for /status, the page and the log. It is ""
// when nothing is held.
func holdWords(held uint64, c clock.State) string {
	if held == 0 {
		return ""
	}
	release := "they go as soon as it syncs"
	if c.HoldLeft > 0 {
		release = fmt.Sprintf("they go when it syncs, or flagged unsynced in %s (clock.upload_hold)", c.HoldLeft.Round(time.Minute))
	}
	return fmt.Sprintf("uploads held: %d readings wait for the system clock to synchronise so that the cloud gets their true times; %s. "+
		"Check NTP (timedatectl timesync-status), or set clock.trust: system (FIELDGATE_CLOCK_TRUST=system) if this machine's clock is right", held, release)
}
