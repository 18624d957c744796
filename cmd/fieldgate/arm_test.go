package main

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
)

// armTarget is a Raspberry Pi CPU and the qemu-user emulator that runs its
// binaries on the CI machine.
type armTarget struct {
	name, goarch, goarm, qemu string
}

// TestOnARM proves the gateway on the Pi's CPUs without a Pi: the test
// binaries of the store, broker, sensors and uplink, cross-compiled for
// 32-bit ARMv6 (Pi Zero/1: unaligned 64-bit atomics, 2 GB address space) and
// arm64, run whole under qemu-user; then the daemon built for each starts
// under qemu, reports READY=1, takes an MQTT publish and serves its status.
func TestOnARM(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles and emulates eight test suites")
	}
	requireLong(t, "eight test suites under ARM emulation")
	goTool := requireTool(t, "go")
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range []armTarget{
		{name: "armv6", goarch: "arm", goarm: "6", qemu: "qemu-arm-static"},
		{name: "arm64", goarch: "arm64", qemu: "qemu-aarch64-static"},
	} {
		t.Run(tg.name, func(t *testing.T) {
			qemu := requireTool(t, tg.qemu)
			env := append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+tg.goarch, "GOARM="+tg.goarm)
			out := t.TempDir()
			for _, pkg := range []string{"store", "broker", "sensors", "uplink"} {
				bin := filepath.Join(out, pkg+".test")
				goBuild(t, root, env, goTool, "test", "-c", "-o", bin, "./"+pkg)
				runEmulated(t, tg, qemu, bin, filepath.Join(root, pkg))
			}
			bin := filepath.Join(out, "fieldgate")
			goBuild(t, root, env, goTool, "build", "-tags", "nomsgpack", "-o", bin, "./cmd/fieldgate")
			daemonOnARM(t, qemu, bin)
		})
	}
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
// rounds. FIELDGATE_EMULATOR lets tests that re-exec themselves (the
// store's crash test) go through the emulator.
func runEmulated(t *testing.T, tg armTarget, qemu, bin, dir string) {
	t.Helper()
	start := time.Now()
	cmd := exec.Command(qemu, bin, "-test.short", "-test.timeout=5m")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FIELDGATE_EMULATOR="+qemu)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s tests on %s: %v\n%s", filepath.Base(dir), tg.name, err, tail(out, 4000))
	}
	t.Logf("%s tests pass on %s under qemu (%s)", filepath.Base(dir), tg.name, time.Since(start).Round(time.Second))
}

// daemonOnARM starts the emulated daemon as systemd would and uses it as a
// node and a technician would.
func daemonOnARM(t *testing.T, qemu, bin string) {
	t.Helper()
	dir := t.TempDir()
	cfg := writeTemp(t, fmt.Sprintf("data_dir: %s\nsensors:\n  - name: bench\n    driver: sim\n    interval: 1s\nmqtt:\n  listen: 127.0.0.1:0\napi:\n  listen: 127.0.0.1:0\n", dir))
	pw := addDevice(t, cfg, "esp32-a") // written by this machine, read by the ARM binary
	sock, want := listenNotify(t, dir)
	cmd := exec.Command(qemu, bin, "-config", cfg)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	d := startDaemonCmd(t, cmd)
	want("READY=1")

	c := paho3.NewClient(paho3.NewClientOptions().AddBroker("tcp://" + d.mqtt).
		SetClientID("a").SetUsername("esp32-a").SetPassword(pw).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	if tok := c.Publish("fieldgate/esp32-a/temperature", 1, false, "21.5"); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	api := &apiClient{t: t, base: d.api}
	code, status := api.do("GET", "/api/v1/status", nil)
	if code != 200 || status["broker"].(map[string]any)["clients"].(float64) != 1 || status["broker"].(map[string]any)["readings"].(float64) != 1 {
		t.Fatalf("status = %d %v, want 200 with one client and one reading", code, status)
	}
	code, page := api.do("GET", "/api/v1/sources/esp32-a", nil)
	if code != 200 || !strings.Contains(fmt.Sprint(page["latest"]), "21.5") {
		t.Errorf("source esp32-a = %d %v, want the published 21.5", code, page)
	}
	c.Disconnect(0)
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	want("STOPPING=1")
	if err := d.cmd.Wait(); err != nil {
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
