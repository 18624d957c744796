package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// syncProbe prints what fsync and fdatasync of a descriptor that is not
// open return, then writes a file and reads it back: the kernel says "bad
// file descriptor" unless something answered the calls before it ran them.
func syncProbe() {
	f := filepath.Join(os.TempDir(), fmt.Sprintf("fieldgate-syncprobe-%d", os.Getpid()))
	defer os.Remove(f)
	werr := os.WriteFile(f, []byte("kept"), 0o600)
	b, rerr := os.ReadFile(f)
	fmt.Printf("fdatasync=%v fsync=%v file=%s %v %v\n", unix.Fdatasync(-1), unix.Fsync(-1), b, werr, rerr)
}

// TestNosyncAnswersSyncsAtOnce runs the probe as it is, and under nosync:
// there fsync and fdatasync return success without the kernel looking at
// their descriptor, and every other call still runs.
func TestNosyncAnswersSyncsAtOnce(t *testing.T) {
	probe := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(os.Args[0], args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got, want := probe("syncprobe"), "fdatasync=bad file descriptor fsync=bad file descriptor file=kept <nil> <nil>"; got != want {
		t.Errorf("without nosync: %q, want %q", got, want)
	}
	if got, want := probe("nosync", os.Args[0], "syncprobe"), "fdatasync=<nil> fsync=<nil> file=kept <nil> <nil>"; got != want {
		t.Errorf("under nosync: %q, want %q", got, want)
	}
	var out strings.Builder
	if err := run(context.Background(), []string{"fieldgate-bench", "nosync"}, &out, &out); err == nil {
		t.Errorf("nosync without a program: no error")
	}
}

// TestABStartsABuildUnderNosync starts the daemon as ab's "nosync:BIN"
// does: the process carries one seccomp filter more than this test (which
// may run under a container's own), a plain daemon none more, and both
// take and store readings.
func TestABStartsABuildUnderNosync(t *testing.T) {
	bin := buildFieldgate(t)
	own := seccompFilters(t, os.Getpid())
	for _, c := range []struct {
		target string
		more   int
	}{{bin, 0}, {nosyncPrefix + bin, 1}} {
		p, err := startBuild(context.Background(), c.target, filepath.Join(t.TempDir(), "fg"))
		if err != nil {
			t.Fatal(err)
		}
		if got := seccompFilters(t, p.cmd.Process.Pid); got != own+c.more {
			t.Errorf("%s: %d seccomp filters, want %d", c.target, got, own+c.more)
		}
		bench(t, "run", "-broker", p.addr, "-clients", "2", "-rate", "50", "-duration", "1s")
		n, err := p.committed()
		p.stop()
		if err != nil || n < 50 {
			t.Errorf("%s: %v readings committed (%v), want at least 50", c.target, n, err)
		}
	}
}

// seccompFilters reads how many seccomp filters process pid runs under
// (/proc/PID/status, Linux 5.9 and later).
func seccompFilters(t *testing.T, pid int) int {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "Seccomp_filters:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("/proc/%d/status: %q: %v", pid, line, err)
			}
			return n
		}
	}
	t.Fatalf("/proc/%d/status has no Seccomp_filters line (Linux before 5.9)", pid)
	return 0
}
