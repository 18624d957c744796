package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"

	"fieldgate/cmd/fieldgate/daemontest"
)

// publishQoS1 connects device id with pw and publishes one QoS 1 reading,
// reporting whether the PUBACK came.
func publishQoS1(addr, id, pw string, v int) error {
	c := paho3.NewClient(paho3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetUsername(id).SetPassword(pw).SetAutoReconnect(false).SetConnectTimeout(3 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		return fmt.Errorf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Publish("fieldgate/"+id+"/temperature", 1, false, fmt.Sprint(v)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		return fmt.Errorf("publish: no PUBACK (%v)", tok.Error())
	}
	return nil
}

// TestMQTTSurvivesRunningOutOfDescriptors reproduces the attack: the daemon
// runs with ulimit -n 256 and an API allowed more connections than that;
// 400 sockets held to the API port for a second take every descriptor
// while a device tries to connect. mochi's own listener returned from its
// accept loop on EMFILE and MQTT never answered again. Once the sockets
// are released, the device publishes QoS 1 and gets its PUBACK.
func TestMQTTSurvivesRunningOutOfDescriptors(t *testing.T) {
	bin := daemontest.Build(t)
	dir := t.TempDir()
	// The device retries every 200 ms: its reconnect budget must not be
	// what stops it.
	cfg := daemontest.WriteConfig(t, fmt.Sprintf("data_dir: %s\nsensors: []\nmqtt:\n  listen: 127.0.0.1:0\n  max_connections: 100\n  connect_burst: 1000\napi:\n  listen: 127.0.0.1:0\n  max_connections: 1000\n", dir))
	pw := addDevice(t, cfg, "esp-fd")
	d := daemontest.StartCmd(t, exec.Command("bash", "-c", `ulimit -n 256 && exec "$0" -config "$1"`, bin, cfg))
	defer d.Terminate(t)
	apiAddr := strings.TrimPrefix(d.API, "http://")

	var held []net.Conn
	for range 400 {
		if c, err := net.DialTimeout("tcp", apiAddr, time.Second); err == nil {
			held = append(held, c)
		}
	}
	// While every descriptor is taken, a device knocks: the broker's accept
	// fails with EMFILE.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = publishQoS1(d.MQTT, "esp-fd", pw, 1) // it may fail: the descriptors are gone
	}()
	time.Sleep(time.Second)
	for _, c := range held {
		_ = c.Close()
	}
	wg.Wait()
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err = publishQoS1(d.MQTT, "esp-fd", pw, 2); err == nil {
			return
		}
	}
	t.Fatalf("after the descriptors came back the broker still does not serve: %v", err)
}

// TestReadyzSaysWhyDevicesCannotConnect: /readyz runs a real MQTT CONNECT;
// when the broker's connection cap is reached it answers 503 with the
// reason (within a second: the probe's outcome is kept that long), and
// 200 again once a slot frees.
func TestReadyzSaysWhyDevicesCannotConnect(t *testing.T) {
	bin := daemontest.Build(t)
	dir := t.TempDir()
	cfg := daemontest.WriteConfig(t, fmt.Sprintf("data_dir: %s\nsensors: []\nmqtt:\n  listen: 127.0.0.1:0\n  max_connections: 2\napi:\n  listen: 127.0.0.1:0\n", dir))
	pws := []string{addDevice(t, cfg, "esp-a"), addDevice(t, cfg, "esp-b")}
	d := daemontest.Start(t, bin, cfg)
	defer d.Terminate(t)
	ready := func() (int, map[string]any) {
		res, err := http.Get(d.API + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, body
	}
	if code, body := ready(); code != http.StatusOK {
		t.Fatalf("readyz %d %v before any client", code, body)
	}
	var clients []paho3.Client
	for i, id := range []string{"esp-a", "esp-b"} {
		c := paho3.NewClient(paho3.NewClientOptions().AddBroker("tcp://" + d.MQTT).SetClientID(id).
			SetUsername(id).SetPassword(pws[i]).SetAutoReconnect(false))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", id, tok.Error())
		}
		clients = append(clients, c)
	}
	// The probe's outcome is kept a second: the next one sees the cap.
	var code int
	var body map[string]any
	daemontest.WaitUntil(t, 10*time.Second, func() bool { code, body = ready(); return code != http.StatusOK })
	checks, _ := body["checks"].(map[string]any)
	if code != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(checks["mqtt"]), "the cap is 2") {
		t.Fatalf("readyz with the broker full: %d %v, want 503 naming the connection cap", code, body)
	}
	clients[0].Disconnect(100)
	daemontest.WaitUntil(t, 10*time.Second, func() bool { code, _ := ready(); return code == http.StatusOK })
	clients[1].Disconnect(100)
}
