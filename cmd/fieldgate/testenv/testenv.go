// Package testenv says what the machine running the tests offers, in the
// style of Go's internal/testenv, for every package's tests.
//
// A test that needs a tool, root, PostgreSQL or a long run skips without
// it, unless FIELDGATE_REQUIRE_ALL=1 (as in CI) turns each such skip into
// a failure, so that nothing is hidden there. Test and benchmark knobs are
// FIELDGATE_TEST_* variables (Var): the daemon's configuration never reads
// that prefix, so a knob is never mistaken for a misspelt setting.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// VarPrefix starts every test and benchmark knob.
const VarPrefix = "FIELDGATE_TEST_"

// Var returns the knob FIELDGATE_TEST_<name>, "" when unset.
func Var(name string) string { return os.Getenv(VarPrefix + name) }

// RequireAll reports whether FIELDGATE_REQUIRE_ALL=1 turns a test's skip
// for something the machine lacks into a failure.
func RequireAll() bool { return os.Getenv("FIELDGATE_REQUIRE_ALL") == "1" }

// Unavailable skips tb because the machine lacks what the message says,
// or fails it under FIELDGATE_REQUIRE_ALL=1.
func Unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if RequireAll() {
		tb.Fatalf("%s (required: FIELDGATE_REQUIRE_ALL=1)", msg)
	}
	tb.Skip(msg)
}

// Tool returns the path of an external program tb needs; without it tb is
// Unavailable.
func Tool(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Unavailable(tb, "%s not installed: %v", name, err)
	}
	return path
}

// Root makes tb Unavailable unless it runs as root, which what needs.
func Root(tb testing.TB, what string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		Unavailable(tb, "%s needs root", what)
	}
}

// Long reports whether FIELDGATE_TEST_LONG=1 asks for the long runs: the
// suites under ARM emulation, the Debian packages and the chaos run at CI
// length. The README's plain go test ./... leaves them out; .ci/run sets
// it.
func Long() bool { return Var("LONG") == "1" }

// RequireLong skips a long test unless FIELDGATE_TEST_LONG=1.
func RequireLong(tb testing.TB, what string) {
	tb.Helper()
	if !Long() {
		tb.Skipf("%s: a long run; set %sLONG=1 to include it (CI does)", what, VarPrefix)
	}
}
