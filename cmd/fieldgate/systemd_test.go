package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"fieldgate/cmd/fieldgate/daemontest"
	"fieldgate/cmd/fieldgate/testenv"
)

func TestWatchdogPingsOnlyWhileHealthy(t *testing.T) {
	var healthy atomic.Bool
	var checks, pings atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		watchdog(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), 40*time.Millisecond,
			func(context.Context) error {
				defer checks.Add(1)
				if healthy.Load() {
					return nil
				}
				return errors.New("store: committer did not answer")
			}, func() { pings.Add(1) })
		close(done)
	}()
	// Counted in checks, not in time: a loaded machine runs fewer.
	waitFor(t, 10*time.Second, "five failed checks", func() bool { return checks.Load() >= 5 })
	if n := pings.Load(); n != 0 {
		t.Fatalf("%d watchdog pings after %d failed checks", n, checks.Load())
	}
	healthy.Store(true)
	waitFor(t, 10*time.Second, "pings once healthy", func() bool { return pings.Load() >= 3 })
	cancel()
	<-done
}

// TestSystemdNotifyProtocol runs the daemon as systemd would with
// Type=notify and WatchdogSec: READY=1 with a STATUS once it serves,
// WATCHDOG=1 pings, STOPPING=1 on SIGTERM.
func TestSystemdNotifyProtocol(t *testing.T) {
	bin := daemontest.Build(t)
	dir := t.TempDir()
	sock, want := daemontest.ListenNotify(t, dir)
	cmd := exec.Command(bin, "-config", mqttConfig(t, dir))
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=400000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	if m := want("READY=1"); !strings.Contains(m, "STATUS=running") {
		t.Errorf("READY without a status: %q", m)
	}
	want("WATCHDOG=1")
	want("WATCHDOG=1")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	want("STOPPING=1")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

// TestUnitFile checks systemd/fieldgate.service with systemd's own tools:
// it verifies, and its exposure score is 1.5 or lower (it was 1.6 before
// PrivateMounts= and UMask=0077; PrivateUsers= would unmap the i2c group,
// PrivateNetwork= and an IP allow list would cut the LAN and the cloud).
func TestUnitFile(t *testing.T) {
	analyze := testenv.Tool(t, "systemd-analyze")
	bin := daemontest.Build(t)
	unit, err := os.ReadFile("../../systemd/fieldgate.service")
	if err != nil {
		t.Fatal(err)
	}
	// verify wants the binary where ExecStart says.
	local := filepath.Join(t.TempDir(), "fieldgate.service")
	if err := os.WriteFile(local, []byte(strings.ReplaceAll(string(unit), "/usr/bin/fieldgate", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", local).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command(analyze, "security", "--offline=yes", "--no-pager", local).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for fieldgate.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	if score > 1.5 {
		t.Errorf("exposure %.1f, want 1.5 or lower", score)
	}
	t.Logf("systemd-analyze security exposure: %s", fmt.Sprint(score))
}
