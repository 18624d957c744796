package main

import (
	"golang.org/x/sys/unix"

	"fieldgate/httpapi"
)

// systemClock asks the kernel whether NTP has synchronised the clock:
// adjtimex reports TIME_ERROR until a time daemon sets it.
func systemClock() httpapi.ClockState {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	switch {
	case err != nil:
		return httpapi.ClockUnknown
	case state == unix.TIME_ERROR || tx.Status&unix.STA_UNSYNC != 0:
		return httpapi.ClockUnsynced
	}
	return httpapi.ClockSynced
}
