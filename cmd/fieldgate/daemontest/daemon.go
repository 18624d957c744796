package daemontest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"fieldgate/cmd/fieldgate/testenv"
)

// Build compiles the daemon for this machine into a temporary directory
// and returns the binary's path.
func Build(tb testing.TB) string {
	tb.Helper()
	goTool := testenv.Tool(tb, "go")
	bin := filepath.Join(tb.TempDir(), "fieldgate")
	if out, err := exec.Command(goTool, "build", "-o", bin, "fieldgate/cmd/fieldgate").CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// WriteConfig writes content to a config.yaml of its own and returns its
// path.
func WriteConfig(tb testing.TB, content string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// Lines the daemon logs, and what a test reads from them: the broker's
// bound address, the API's base URL, and that it runs.
var (
	LogMQTT    = regexp.MustCompile(`msg="mqtt broker listening".* tcp=(\S+)`)
	LogAPI     = regexp.MustCompile(`msg="api listening".* url=(\S+)`)
	LogRunning = regexp.MustCompile(`msg="fieldgate running"`)
)

// passwordLine is how `fieldgate device add` prints the new password.
var passwordLine = regexp.MustCompile(`password: ([A-Z2-7]{26})\n`)

// AddDevice registers device id in cfg's store with bin's `device add`
// (extra are more of its flags) and returns its MQTT password.
func AddDevice(tb testing.TB, bin, cfg, id string, extra ...string) string {
	tb.Helper()
	out, err := exec.Command(bin, append(append([]string{"device", "add", id}, extra...), "-config", cfg)...).CombinedOutput()
	m := passwordLine.FindStringSubmatch(string(out))
	if err != nil || m == nil {
		tb.Fatalf("fieldgate device add %s: %v\n%s", id, err, out)
	}
	return m[1]
}

// Daemon is a fieldgate subprocess.
type Daemon struct {
	Cmd  *exec.Cmd
	MQTT string // the broker's bound address
	API  string // the API's base URL, if it serves

	mu  sync.Mutex
	log []string // every line it logged
}

// Logged returns the lines the daemon logged so far.
func (d *Daemon) Logged() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.log)
}

// Terminate stops the daemon with SIGTERM; it must exit cleanly.
func (d *Daemon) Terminate(tb testing.TB) {
	tb.Helper()
	if err := d.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tb.Fatal(err)
	}
	if err := d.Cmd.Wait(); err != nil {
		tb.Fatalf("daemon exit: %v", err)
	}
}

// Start runs bin with cfg and waits until it runs.
func Start(tb testing.TB, bin, cfg string) *Daemon {
	tb.Helper()
	return StartCmd(tb, exec.Command(bin, "-config", cfg))
}

// StartCmd starts cmd, a daemon, and waits until it runs; it is killed at
// the end of the test if it still runs.
func StartCmd(tb testing.TB, cmd *exec.Cmd) *Daemon {
	tb.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ready := make(chan *Daemon, 1)
	go func() {
		d := &Daemon{Cmd: cmd}
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.log = append(d.log, line)
			d.mu.Unlock()
			if m := LogMQTT.FindStringSubmatch(line); m != nil {
				d.MQTT = m[1]
			}
			if m := LogAPI.FindStringSubmatch(line); m != nil {
				d.API = m[1]
			}
			if LogRunning.MatchString(line) {
				ready <- d
			}
		}
	}()
	select {
	case d := <-ready:
		return d
	case <-time.After(time.Minute):
		tb.Fatal("the daemon did not start")
		return nil
	}
}
