package daemontest

import (
	"os"
	"os/exec"
	"testing"
)

// RequireTool returns the path of an external program a test needs.
// Without it the test skips, unless FIELDGATE_REQUIRE_ALL=1 (as in CI),
// where a missing tool fails the test instead of hiding it.
func RequireTool(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if RequireAll() {
		tb.Fatalf("%s is required (FIELDGATE_REQUIRE_ALL=1) but not installed: %v", name, err)
	}
	tb.Skipf("%s not installed: %v", name, err)
	return ""
}

// RequireAll reports whether FIELDGATE_REQUIRE_ALL=1 turns a test's skip
// for a missing tool or privilege into a failure.
func RequireAll() bool { return os.Getenv("FIELDGATE_REQUIRE_ALL") == "1" }

// Long reports whether FIELDGATE_LONG=1 asks for the long runs: the suites
// under ARM emulation, the Debian packages and the chaos run at CI length.
// The README's plain go test ./... leaves them out; .ci/run sets it.
func Long() bool { return os.Getenv("FIELDGATE_LONG") == "1" }

// RequireLong skips a long test unless FIELDGATE_LONG=1.
func RequireLong(tb testing.TB, what string) {
	tb.Helper()
	if !Long() {
		tb.Skipf("%s: a long run; set FIELDGATE_LONG=1 to include it (CI does)", what)
	}
}
