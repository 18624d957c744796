package clock

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// timesyncFlag is created by systemd-timesyncd (the time daemon of Raspberry
// Pi OS) once it has synchronised the clock; /run is per boot.
const timesyncFlag = "/run/systemd/timesync/synchronized"

// System is the machine's real clocks.
type System struct {
	// FlagFile replaces timesyncd's flag file (tests). Default timesyncFlag.
	FlagFile string
}

// Wall returns time.Now.
func (System) Wall() time.Time { return time.Now() }

// SinceBoot reads CLOCK_BOOTTIME, which counts from boot, also across
// suspend, and never steps.
func (System) SinceBoot() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0 // cannot fail on Linux ≥ 2.6.39
	}
	return time.Duration(ts.Nano())
}

// NTPSynced asks the kernel (adjtimex: STA_UNSYNC is cleared once a time
// daemon disciplines the clock) and, where a sandbox denies adjtimex (systemd's
// ProtectClock=yes does), looks for timesyncd's flag file.
func (s System) NTPSynced() (bool, error) {
	flag := s.FlagFile
	if flag == "" {
		flag = timesyncFlag
	}
	if _, err := os.Stat(flag); err == nil {
		return true, nil
	}
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	switch {
	case errors.Is(err, unix.EPERM):
		return false, fmt.Errorf("adjtimex is not permitted here and %s does not exist", flag)
	case err != nil:
		return false, fmt.Errorf("adjtimex: %w", err)
	}
	return state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0, nil
}

// BootID identifies the current boot: $FIELDGATE_BOOT_ID (the systemd unit
// sets it from %b, since its sandbox hides /proc/sys), else the kernel's
// boot_id. It returns "" when neither is available.
func BootID() string {
	if id := os.Getenv("FIELDGATE_BOOT_ID"); id != "" {
		return id
	}
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
