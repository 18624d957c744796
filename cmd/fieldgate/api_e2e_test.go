package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"fieldgate/cmd/fieldgate/daemontest"
)

// TestAPIEndToEnd drives the real binary the way a technician and a node
// do: log in with the first admin password, register a device over the API,
// publish with its password over MQTT, watch the reading arrive on the live
// stream and in the readings, then remove the device and see it cut off.
func TestAPIEndToEnd(t *testing.T) {
	bin := daemontest.Build(t)
	dir := t.TempDir()
	d := daemontest.Start(t, bin, mqttConfig(t, dir))
	if d.API == "" {
		t.Fatal("the daemon did not log its API address")
	}
	pw, err := os.ReadFile(filepath.Join(dir, "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	c := &daemontest.API{TB: t, Base: d.API + "/api/v1"}
	status, body := c.Do("POST", "/auth/login", map[string]string{"username": "admin", "password": strings.TrimSpace(string(pw))})
	if status != 200 {
		t.Fatalf("login → %d %v", status, body)
	}
	c.Token = body["token"].(string)
	status, body = c.Do("PUT", "/devices/esp-api", map[string]any{"name": "porch"})
	if status != 201 {
		t.Fatalf("PUT device → %d %v", status, body)
	}
	devicePW := body["password"].(string)

	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(d.API, "http")+"/api/v1/ws?source=esp-api", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	lost := make(chan struct{})
	o := paho3.NewClientOptions().AddBroker("tcp://" + d.MQTT).SetClientID("esp-api").SetUsername("esp-api").SetPassword(devicePW).
		SetAutoReconnect(false).SetConnectionLostHandler(func(paho3.Client, error) { close(lost) })
	mc := paho3.NewClient(o)
	if tok := mc.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT connect with the API's password: %v", tok.Error())
	}
	if tok := mc.Publish("fieldgate/esp-api/temperature", 1, false, "21.5"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	if got := readReading(t, ws); got["source"] != "esp-api" || got["value"] != 21.5 || got["quantity"] != "temperature" {
		t.Errorf("live stream reading %v", got)
	}
	status, body = c.Do("GET", "/sources/esp-api/readings", nil)
	if status != 200 || body["total"] != 1.0 {
		t.Errorf("readings → %d %v", status, body)
	}
	status, body = c.Do("GET", "/sources/esp-api", nil)
	if status != 200 || body["state"] != "ok" {
		t.Errorf("source → %d %v", status, body)
	}
	status, body = c.Do("GET", "/status", nil)
	if status != 200 || body["broker"].(map[string]any)["clients"] != 1.0 {
		t.Errorf("status → %d %v", status, body)
	}
	if status, _ := c.Do("DELETE", "/devices/esp-api", nil); status != 204 {
		t.Fatalf("DELETE device → %d", status)
	}
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Error("the removed device is still connected")
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if res, err := http.Get(d.API + p); err != nil || res.StatusCode != 200 {
			t.Errorf("%s: %v %v", p, err, res)
		}
	}
	res, err := http.Get(d.API + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !regexp.MustCompile(`(?m)^fieldgate_mqtt_readings_total 1$`).Match(metrics) {
		t.Errorf("/metrics does not count the reading:\n%.2000s", metrics)
	}
}

// readReading reads live-stream messages until a reading arrives.
func readReading(t *testing.T, ws *websocket.Conn) map[string]any {
	t.Helper()
	if err := ws.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for {
		var m struct {
			Type    string
			Reading map[string]any
		}
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatalf("live stream: %v", err)
		}
		if m.Type == "reading" {
			return m.Reading
		}
	}
}

func TestUserCommands(t *testing.T) {
	cfg := daemontest.WriteConfig(t, fmt.Sprintf("data_dir: %s\nsensors: []\n", t.TempDir()))
	runUser := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"fieldgate", "user"}, append(args, "-config", cfg)...), envMap(nil), &out, &bytes.Buffer{})
		return out.String(), err
	}
	out, err := runUser("add", "ana", "-role", "admin")
	if err != nil || !regexp.MustCompile(`role admin.*\n\n  [A-Z2-7]{26}\n`).MatchString(out) {
		t.Fatalf("add: %v\n%s", err, out)
	}
	if _, err := runUser("add", "ana"); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second add: %v", err)
	}
	if _, err := runUser("add", "bob", "-role", "boss"); err == nil || !strings.Contains(err.Error(), "want viewer, technician or admin") {
		t.Errorf("bad role: %v", err)
	}
	if _, err := runUser("add", "a/b"); err == nil {
		t.Error("a user name with a slash was accepted")
	}
	if out, err := runUser("passwd", "ana"); err != nil || !strings.Contains(out, "new password") {
		t.Errorf("passwd: %v %s", err, out)
	}
	if out, err := runUser("list"); err != nil || !strings.Contains(out, "ana   admin") {
		t.Errorf("list: %v\n%s", err, out)
	}
	if _, err := runUser("remove", "ana"); err == nil || !strings.Contains(err.Error(), "only admin") {
		t.Errorf("removing the last admin: %v", err)
	}
	if _, err := runUser("add", "cid", "-role", "admin"); err != nil {
		t.Fatal(err)
	}
	if out, err := runUser("remove", "ana"); err != nil || !strings.Contains(out, "removed") {
		t.Errorf("remove: %v %s", err, out)
	}
	if _, err := runUser("remove", "ana"); err == nil {
		t.Error("removing a missing user succeeded")
	}
}
