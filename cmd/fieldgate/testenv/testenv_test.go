package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// TestUnavailableSkipsOrFails runs this test binary again with and
// without FIELDGATE_REQUIRE_ALL=1 and a tool that does not exist.
func TestUnavailableSkipsOrFails(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		Tool(t, "fieldgate-no-such-tool")
		t.Fatal("a missing tool neither skipped nor failed")
	}
	for requireAll, wantFail := range map[string]bool{"0": false, "1": true} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestUnavailableSkipsOrFails$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "FIELDGATE_REQUIRE_ALL="+requireAll)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != wantFail {
			t.Errorf("FIELDGATE_REQUIRE_ALL=%s: failed %v, want %v:\n%s", requireAll, failed, wantFail, out)
		}
	}
}
