package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"fieldgate/cmd/fieldgate/daemontest"
	"fieldgate/store"
)

// syncBuffer is a bytes.Buffer safe for the daemon's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testConfig writes a configuration for a fast daemon in a temp dir.
func testConfig(t *testing.T, dataDir string) string {
	t.Helper()
	return daemontest.WriteConfig(t, fmt.Sprintf(`data_dir: %s
mqtt:
  listen: 127.0.0.1:0
api:
  listen: 127.0.0.1:0
store:
  commit_interval: 20ms
sensors:
  - name: bench
    driver: sim
    interval: 100ms
shutdown_timeout: 5s
`, dataDir))
}

func TestRunStoresSimulatedReadingsUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"fieldgate", "-config", cfg}, envMap(nil), &bytes.Buffer{}, &stderr) }()
	waitFor(t, 10*time.Second, "the daemon to run", func() bool { return strings.Contains(stderr.String(), "fieldgate running") })
	api := daemontest.LogAPI.FindStringSubmatch(stderr.String())[1]
	waitFor(t, 10*time.Second, "four readings stored", func() bool {
		resp, err := http.Get(api + "/api/v1/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var s struct {
			Store struct{ Readings int } `json:"store"`
		}
		return json.NewDecoder(resp.Body).Decode(&s) == nil && s.Store.Readings >= 4
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context was cancelled")
	}
	assertSimReadings(t, dir, 4)
}

// TestRunKeepsGoingWithAMissingSensor configures an I2C sensor on a bus this
// machine does not have: the daemon must say so clearly, report the sensor
// failing, and keep storing the simulated sensor's readings.
func TestRunKeepsGoingWithAMissingSensor(t *testing.T) {
	dir := t.TempDir()
	cfg := daemontest.WriteConfig(t, fmt.Sprintf(`data_dir: %s
mqtt:
  listen: ""
api:
  listen: ""
log:
  status_interval: 100ms
sensors:
  - name: bench
    driver: sim
    interval: 100ms
  - name: cabinet
    driver: sht3x
    bus: 97
    interval: 1s
`, dir))
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"fieldgate", "-config", cfg}, envMap(nil), &bytes.Buffer{}, &stderr) }()
	waitFor(t, 10*time.Second, "the sensor failure and a status line", func() bool {
		out := stderr.String()
		return strings.Contains(out, "/dev/i2c-97 does not exist") && strings.Contains(out, "sensors_failing=1")
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), `msg="sensor failed" component=sensors sensor=cabinet kind=open`) {
		t.Errorf("no clear open failure in the log:\n%s", stderr.String())
	}
	assertSimReadings(t, dir, 2)
}

func TestRunRejectsBadInvocations(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fieldgate", "frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"fieldgate", "run", "extra"}, `unexpected argument "extra"`},
		{[]string{"fieldgate", "-config", "/nonexistent/fieldgate.yaml"}, "no such file"},
		{[]string{"fieldgate", "-nope"}, "flag provided but not defined"},
	} {
		err := run(context.Background(), tc.args, envMap(nil), &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"fieldgate", "version"}, envMap(nil), &out, &bytes.Buffer{}); err != nil || !strings.HasPrefix(out.String(), "fieldgate dev (commit") {
		t.Errorf("version: %q, %v", out.String(), err)
	}
}

// A port in use names the setting to change and its environment variable,
// for every listener.
func TestAPortInUseNamesTheSetting(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	addr := held.Addr().String()
	for _, tc := range []struct{ key, yaml string }{
		{"mqtt.listen", "mqtt:\n  listen: " + addr + "\napi:\n  listen: \"\"\n"},
		{"mqtt.ws_listen", "mqtt:\n  listen: \"\"\n  ws_listen: " + addr + "\napi:\n  listen: \"\"\n"},
		{"api.listen", "mqtt:\n  listen: \"\"\napi:\n  listen: " + addr + "\n"},
	} {
		cfg := daemontest.WriteConfig(t, fmt.Sprintf("data_dir: %s\nsensors: []\n%s", t.TempDir(), tc.yaml))
		err := run(context.Background(), []string{"fieldgate", "-config", cfg}, envMap(nil), &bytes.Buffer{}, &bytes.Buffer{})
		env := "FIELDGATE_" + strings.ToUpper(strings.ReplaceAll(tc.key, ".", "_"))
		if err == nil || !strings.Contains(err.Error(), "set "+tc.key+" (or "+env+")") || !strings.Contains(err.Error(), "already listens") {
			t.Errorf("%s on a port in use: %v", tc.key, err)
		}
	}
}

// TestDaemonEndToEnd builds the real binary, runs it as a user would, and
// stops it with SIGTERM: it must store simulated readings and exit 0 within
// its shutdown deadline.
func TestDaemonEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := daemontest.Build(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir)

	out, err := exec.Command(bin, "check-config", "-config", cfg).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "data_dir: "+dir) {
		t.Fatalf("check-config: %v\n%s", err, out)
	}
	bad := daemontest.WriteConfig(t, "store:\n  full_policy: maybe\n")
	out, err = exec.Command(bin, "check-config", "-config", bad).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), `store.full_policy: "maybe"`) {
		t.Fatalf("check-config of a bad file: %v\n%s", err, out)
	}

	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "FIELDGATE_CONFIG="+cfg, "FIELDGATE_LOG_STATUS_INTERVAL=200ms")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var log []string
	expect := func(what string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("daemon exited before logging %q:\n%s", what, strings.Join(log, "\n"))
				}
				log = append(log, l)
				if strings.Contains(l, what) {
					return
				}
			case <-timeout:
				t.Fatalf("no %q in the log:\n%s", what, strings.Join(log, "\n"))
			}
		}
	}
	expect("fieldgate running")
	expect("msg=status readings=")
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	expect("fieldgate stopped")
	for l := range lines {
		log = append(log, l)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v\n%s", err, strings.Join(log, "\n"))
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %v, over the 5s deadline", took)
	}
	for _, l := range log {
		if strings.Contains(l, "level=ERROR") || strings.Contains(l, "level=WARN") {
			t.Errorf("unexpected log line: %s", l)
		}
	}
	assertSimReadings(t, dir, 4)
}

// assertSimReadings opens the daemon's store and checks it holds at least
// min readings from the simulated sensor, with both quantities.
func assertSimReadings(t *testing.T, dir string, min int) {
	t.Helper()
	st, err := store.Open(store.Options{Path: filepath.Join(dir, "fieldgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	}()
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, q := range []string{"temperature", "humidity"} {
		rs, err := st.Readings(store.Query{Source: "sim-bench", Quantity: q})
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 0 {
			t.Errorf("no %s readings from sim-bench", q)
		}
		total += len(rs)
	}
	if total < min {
		t.Errorf("%d simulated readings stored, want at least %d", total, min)
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
