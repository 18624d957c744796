package onarm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"

	"fieldgate/cmd/fieldgate/daemontest"
	"fieldgate/cmd/fieldgate/testenv"
)

// Target is a Raspberry Pi CPU and the qemu-user emulator that runs its
// binaries on the CI machine.
type Target struct {
	Name, GOARCH, GOARM, Qemu string
}

// The Pi's CPUs: 32-bit ARMv6 (Pi Zero and 1: unaligned 64-bit atomics, a
// 2 GB address space) and arm64 (Pi 3 and later on a 64-bit OS).
var (
	ARMv6 = Target{Name: "armv6", GOARCH: "arm", GOARM: "6", Qemu: "qemu-arm-static"}
	ARM64 = Target{Name: "arm64", GOARCH: "arm64", Qemu: "qemu-aarch64-static"}
)

// Test proves the gateway on tg without a Pi: the test binaries of the
// store, broker, sensors and uplink, cross-compiled for tg, run whole under
// qemu-user; then the daemon built for tg starts under qemu, reports
// READY=1, takes an MQTT publish and serves its status. It is a long run
// (FIELDGATE_TEST_LONG=1).
func Test(t *testing.T, tg Target) {
	if testing.Short() {
		t.Skip("cross-compiles and emulates four test suites")
	}
	testenv.RequireLong(t, "four test suites under ARM emulation")
	goTool := testenv.Tool(t, "go")
	qemu := testenv.Tool(t, tg.Qemu)
	mod, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(mod)))
	host := daemontest.Build(t) // registers the device the emulated daemon admits
	env := append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+tg.GOARCH, "GOARM="+tg.GOARM)
	out := t.TempDir()
	// Built as deploy/build.sh builds the release (-trimpath, nomsgpack):
	// the daemon under test is the one shipped, and its packages come from
	// the build cache CI's cross-build filled.
	for _, pkg := range []string{"store", "broker", "sensors", "uplink"} {
		bin := filepath.Join(out, pkg+".test")
		goBuild(t, root, env, goTool, "test", "-trimpath", "-tags", "nomsgpack", "-c", "-o", bin, "./"+pkg)
		runEmulated(t, tg, qemu, bin, filepath.Join(root, pkg))
	}
	bin := filepath.Join(out, "fieldgate")
	goBuild(t, root, env, goTool, "build", "-trimpath", "-tags", "nomsgpack", "-o", bin, "./cmd/fieldgate")
	daemonOnARM(t, qemu, bin, host)
}

// goBuild runs a go command in dir with env and fails the test on error.
func goBuild(t *testing.T, dir string, env []string, goTool string, args ...string) {
	t.Helper()
	cmd := exec.Command(goTool, args...)
	cmd.Dir, cmd.Env = dir, env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// runEmulated runs a test binary under qemu in its package directory (for
// testdata), in short mode: emulation is 10–50 times slower, so the
// randomised suites (power cuts, the model test, crash cycles) run fewer
// rounds. FIELDGATE_TEST_EMULATOR lets tests that re-exec themselves (the
// store's crash test) go through the emulator.
func runEmulated(t *testing.T, tg Target, qemu, bin, dir string) {
	t.Helper()
	start := time.Now()
	cmd := exec.Command(qemu, bin, "-test.short", "-test.timeout=5m")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FIELDGATE_TEST_EMULATOR="+qemu)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s tests on %s: %v\n%s", filepath.Base(dir), tg.Name, err, tail(out, 4000))
	}
	t.Logf("%s tests pass on %s under qemu (%s)", filepath.Base(dir), tg.Name, time.Since(start).Round(time.Second))
}

// daemonOnARM starts the emulated daemon as systemd would and uses it as a
// node and a technician would; host is this machine's build.
func daemonOnARM(t *testing.T, qemu, bin, host string) {
	t.Helper()
	dir := t.TempDir()
	cfg := daemontest.WriteConfig(t, fmt.Sprintf("data_dir: %s\nsensors:\n  - name: bench\n    driver: sim\n    interval: 1s\nmqtt:\n  listen: 127.0.0.1:0\napi:\n  listen: 127.0.0.1:0\n", dir))
	pw := daemontest.AddDevice(t, host, cfg, "esp32-a") // written by this machine, read by the ARM binary
	sock, want := daemontest.ListenNotify(t, dir)
	cmd := exec.Command(qemu, bin, "-config", cfg)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	d := daemontest.StartCmd(t, cmd)
	want("READY=1")

	c := paho3.NewClient(paho3.NewClientOptions().AddBroker("tcp://" + d.MQTT).
		SetClientID("a").SetUsername("esp32-a").SetPassword(pw).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	if tok := c.Publish("fieldgate/esp32-a/temperature", 1, false, "21.5"); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	api := &daemontest.API{TB: t, Base: d.API}
	code, status := api.Do("GET", "/api/v1/status", nil)
	if code != 200 || status["broker"].(map[string]any)["clients"].(float64) != 1 || status["broker"].(map[string]any)["readings"].(float64) != 1 {
		t.Fatalf("status = %d %v, want 200 with one client and one reading", code, status)
	}
	code, page := api.Do("GET", "/api/v1/sources/esp32-a", nil)
	if code != 200 || !strings.Contains(fmt.Sprint(page["latest"]), "21.5") {
		t.Errorf("source esp32-a = %d %v, want the published 21.5", code, page)
	}
	c.Disconnect(0)
	if err := d.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	want("STOPPING=1")
	if err := d.Cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

// tail returns the last n bytes of out: the end of a failing test's log.
func tail(out []byte, n int) []byte {
	if len(out) > n {
		return out[len(out)-n:]
	}
	return out
}
