package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"fieldgate/cmd/fieldgate/daemontest"
	"fieldgate/store"
)

// runDevice runs "fieldgate device ARGS" against the store in dir.
func runDevice(t *testing.T, cfg string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), append([]string{"fieldgate", "device"}, append(args, "-config", cfg)...), envMap(nil), &out, &bytes.Buffer{})
	return out.String(), err
}

var passwordLine = regexp.MustCompile(`password: ([A-Z2-7]{26})\n`)

func TestDeviceCommands(t *testing.T) {
	dir := t.TempDir()
	cfg := daemontest.WriteConfig(t, fmt.Sprintf("data_dir: %s\nsensors: []\n", dir))
	out, err := runDevice(t, cfg, "add", "esp32-kitchen", "-name", "Kitchen")
	if err != nil {
		t.Fatal(err)
	}
	m := passwordLine.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "mqtt:\n    broker: GATEWAY") || !strings.Contains(out, "MqttUser esp32-kitchen") {
		t.Fatalf("add printed:\n%s", out)
	}
	first := m[1]
	if _, err := runDevice(t, cfg, "add", "esp32-kitchen"); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("adding it twice: %v", err)
	}
	for _, bad := range []string{"gateway", "a/b", "-"} {
		if _, err := runDevice(t, cfg, "add", bad); err == nil {
			t.Errorf("device id %q accepted", bad)
		}
	}
	out, err = runDevice(t, cfg, "passwd", "esp32-kitchen")
	if m := passwordLine.FindStringSubmatch(out); err != nil || m == nil || m[1] == first {
		t.Fatalf("passwd: %v\n%s", err, out)
	}
	out, err = runDevice(t, cfg, "list")
	if err != nil || !strings.Contains(out, "esp32-kitchen") || !strings.Contains(out, "Kitchen") || !strings.Contains(out, "never") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	// While a fieldgate holds the store, the command says what to do.
	st, err := store.Open(store.Options{Path: dir + "/fieldgate.db"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runDevice(t, cfg, "list"); err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Errorf("list with the store in use: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := runDevice(t, cfg, "remove", "esp32-kitchen"); err != nil {
		t.Fatal(err)
	}
	if out, _ := runDevice(t, cfg, "list"); strings.Contains(out, "esp32-kitchen") {
		t.Errorf("removed device still listed:\n%s", out)
	}
	if _, err := runDevice(t, cfg, "frobnicate"); err == nil {
		t.Error("unknown device command accepted")
	}
}
