package daemontest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// WaitUntil polls cond every 100 ms (gently: the API rate-limits) until it
// holds, failing the test after within.
func WaitUntil(tb testing.TB, within time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met within %v", within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ProcStatusKB reads one kB field of /proc/PID/status ("RssAnon").
func ProcStatusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
