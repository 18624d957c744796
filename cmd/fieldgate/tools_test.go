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
