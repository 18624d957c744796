package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"

	"fieldgate/cmd/fieldgate/daemontest"
	"fieldgate/store"
	"fieldgate/store/storetest"
)

// TestDaemonDiskFull fills the filesystem under a running daemon. The
// write-ahead log's preallocated segments keep taking readings, so QoS 1
// publishes are still acknowledged while checkpoints into the store file
// fail; once the head holds twice its bound, a publish that cannot be
// stored gets no PUBACK, /readyz fails and /status says why, the daemon
// keeps running, and once space is freed it takes readings again by
// itself; every acknowledged reading is in the store and the file passes
// bbolt's check afterwards.
func TestDaemonDiskFull(t *testing.T) {
	bin := daemontest.Build(t)
	dir := storetest.MountTmpfs(t, "24m")
	cfg := daemontest.WriteConfig(t, fmt.Sprintf(`data_dir: %s
mqtt:
  listen: 127.0.0.1:0
  publish_rate: 100000
  publish_burst: 100000
api:
  listen: 127.0.0.1:0
store:
  commit_interval: 50ms
  head:
    max_readings: 1000
sensors:
  - name: bench
    driver: sim
    interval: 100ms
`, dir))
	d := daemontest.Start(t, bin, cfg)
	c := &daemontest.API{TB: t, Base: d.API + "/api/v1"}
	pw, err := os.ReadFile(filepath.Join(dir, "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	_, body := c.Do("POST", "/auth/login", map[string]string{"username": "admin", "password": strings.TrimSpace(string(pw))})
	c.Token = body["token"].(string)
	_, body = c.Do("PUT", "/devices/esp-full", map[string]any{})
	devicePW := body["password"].(string)
	connect := func() paho3.Client {
		o := paho3.NewClientOptions().AddBroker("tcp://" + d.MQTT).SetClientID("esp-full").SetUsername("esp-full").
			SetPassword(devicePW).SetAutoReconnect(false).SetWriteTimeout(3 * time.Second)
		mc := paho3.NewClient(o)
		if tok := mc.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("connect: %v", tok.Error())
		}
		return mc
	}
	var ackedValues []float64
	publish := func(mc paho3.Client, v int) bool {
		tok := mc.Publish("fieldgate/esp-full/counter", 1, false, fmt.Sprint(v)) // a quantity without physical bounds
		ok := tok.WaitTimeout(3*time.Second) && tok.Error() == nil
		if ok {
			ackedValues = append(ackedValues, float64(v))
		}
		return ok
	}
	mc := connect()
	if !publish(mc, 1) {
		t.Fatal("publish before the disk filled was not acknowledged")
	}

	filler := storetest.FillDisk(t, dir)
	refused := false
	for i := 0; i < 5000 && !refused; i++ { // the log takes up to twice the head's 1000
		refused = !publish(mc, 100+i)
	}
	if !refused {
		t.Fatal("QoS 1 publishes kept being acknowledged on a full disk past the head's bound")
	}
	ready := func() int {
		res, err := http.Get(d.API + "/readyz")
		if err != nil {
			t.Fatalf("readyz: %v (has the daemon died?)", err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	daemontest.WaitUntil(t, 5*time.Second, func() bool { return ready() == http.StatusServiceUnavailable })
	status, body := c.Do("GET", "/status", nil)
	health := body["health"].(map[string]any)
	if status != 200 || health["state"] != "failing" || !strings.Contains(fmt.Sprint(health["reasons"]), "no space left on device") {
		t.Errorf("status on a full disk: %d %v", status, health)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	daemontest.WaitUntil(t, 15*time.Second, func() bool { return ready() == http.StatusOK })
	mc.Disconnect(100)
	mc = connect()
	if !publish(mc, 2) {
		t.Fatal("publish after space was freed was not acknowledged")
	}
	mc.Disconnect(100)
	d.Terminate(t)
	st, err := store.Open(store.Options{Path: filepath.Join(dir, "fieldgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
	got, err := st.Readings(store.Query{Source: "esp-full", Quantity: "counter"})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[float64]bool{}
	for _, r := range got {
		stored[r.Value] = true
	}
	for _, v := range ackedValues {
		if !stored[v] {
			t.Errorf("acknowledged reading %v is not in the store", v)
		}
	}
}
