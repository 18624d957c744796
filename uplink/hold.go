package uplink

import (
	"fmt"
	"time"
)

// HoldWords says, when uploads wait for the system clock to synchronise
// (Status.HeldForClock readings), why, for how long and how to change it:
// one wording for /status, the page and the log. left is how long until
// the held readings go flagged unsynced (clock.upload_hold; 0: no limit
// known). It is "" when nothing is held.
func HoldWords(held uint64, left time.Duration) string {
	if held == 0 {
		return ""
	}
	release := "they go as soon as it syncs"
	if left > 0 {
		release = fmt.Sprintf("they go when it syncs, or flagged unsynced in %s (clock.upload_hold)", left.Round(time.Minute))
	}
	return fmt.Sprintf("uploads held: %d readings wait for the system clock to synchronise so that the cloud gets their true times; %s. "+
		"Check NTP (timedatectl timesync-status), or set clock.trust: system (FIELDGATE_CLOCK_TRUST=system) if this machine's clock is right", held, release)
}
