package main

import (
	"os"
	"os/exec"
	"testing"
)

// requireTool returns the path of an external program a test needs. Without
// it the test skips, unless FIELDGATE_REQUIRE_ALL=1 (as in CI), where a
// missing tool fails the test instead of hiding it.
func requireTool(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("FIELDGATE_REQUIRE_ALL") == "1" {
		tb.Fatalf("%s is required (FIELDGATE_REQUIRE_ALL=1) but not installed: %v", name, err)
	}
	tb.Skipf("%s not installed: %v", name, err)
	return ""
}

// longTests reports whether FIELDGATE_LONG=1 asks for the long runs: the
// suites under ARM emulation, the Debian packages and the chaos run at CI
// length. The README's plain go test ./... leaves them out so that no test
// binary needs more than a few minutes; .ci/run sets it.
func longTests() bool { return os.Getenv("FIELDGATE_LONG") == "1" }

// requireLong skips a long test unless FIELDGATE_LONG=1.
func requireLong(tb testing.TB, what string) {
	tb.Helper()
	if !longTests() {
		tb.Skipf("%s: a long run; set FIELDGATE_LONG=1 to include it (CI does)", what)
	}
}
