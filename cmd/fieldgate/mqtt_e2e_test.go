package main

import (
	"bufio"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"

	"fieldgate/cmd/fieldgate/daemontest"
	"fieldgate/cmd/fieldgate/testenv"
	"fieldgate/store"
)

// mqttConfig is a daemon configuration with a loopback broker and no sensors.
func mqttConfig(t *testing.T, dir string) string {
	return daemontest.WriteConfig(t, fmt.Sprintf("data_dir: %s\nsensors: []\nmqtt:\n  listen: 127.0.0.1:0\napi:\n  listen: 127.0.0.1:0\n", dir))
}

func addDevice(t *testing.T, cfg, id string, extra ...string) string {
	t.Helper()
	out, err := runDevice(t, cfg, append([]string{"add", id}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return passwordLine.FindStringSubmatch(out)[1]
}

// TestPubackSurvivesSIGKILL publishes QoS 1 to the real daemon and kills it
// with SIGKILL the moment the PUBACK arrives: the reading must be on disk.
func TestPubackSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon five times")
	}
	bin := daemontest.Build(t)
	dir := t.TempDir()
	cfg := mqttConfig(t, dir)
	pw := addDevice(t, cfg, "esp32-a")
	const cycles = 5
	for i := range cycles {
		d := daemontest.Start(t, bin, cfg)
		o := paho3.NewClientOptions().AddBroker("tcp://" + d.MQTT).SetClientID("a").SetUsername("esp32-a").SetPassword(pw).SetAutoReconnect(false)
		c := paho3.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("cycle %d: connect: %v", i, tok.Error())
		}
		tok := c.Publish("fieldgate/esp32-a/temperature", 1, false, strconv.Itoa(100+i))
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("cycle %d: publish: %v", i, tok.Error())
		}
		if err := d.Cmd.Process.Signal(syscall.SIGKILL); err != nil { // right after the PUBACK
			t.Fatal(err)
		}
		_ = d.Cmd.Wait()
		c.Disconnect(0)
	}
	st, err := store.Open(store.Options{Path: filepath.Join(dir, "fieldgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	}()
	rs, err := st.Readings(store.Query{Source: "esp32-a", Quantity: "temperature"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != cycles {
		t.Fatalf("%d of %d acknowledged readings survived SIGKILL: %v", len(rs), cycles, rs)
	}
	for i, r := range rs {
		if r.Value != float64(100+i) {
			t.Errorf("reading %d = %v", i, r.Value)
		}
	}
}

// TestMosquittoClients publishes with mosquitto_pub and receives a command
// with mosquitto_sub, as a technician would test a gateway from a laptop.
func TestMosquittoClients(t *testing.T) {
	pub := testenv.Tool(t, "mosquitto_pub")
	sub := testenv.Tool(t, "mosquitto_sub")
	bin := daemontest.Build(t)
	dir := t.TempDir()
	cfg := mqttConfig(t, dir)
	pw := addDevice(t, cfg, "esp32-cellar")
	adminPW := addDevice(t, cfg, "ops", "-admin")
	d := daemontest.Start(t, bin, cfg)
	host, port, _ := splitHostPort(d.MQTT)

	out, err := exec.Command(pub, "-h", host, "-p", port, "-u", "esp32-cellar", "-P", pw, "-q", "1", "-V", "mqttv311",
		"-t", "fieldgate/esp32-cellar/humidity", "-m", "81.5").CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub: %v\n%s", err, out)
	}
	// The wrong password is refused.
	if out, err := exec.Command(pub, "-h", host, "-p", port, "-u", "esp32-cellar", "-P", "wrong", "-q", "1",
		"-t", "fieldgate/esp32-cellar/humidity", "-m", "1").CombinedOutput(); err == nil {
		t.Errorf("mosquitto_pub with a wrong password succeeded: %s", out)
	}
	// The device receives a command the admin sends (MQTT 5 this time).
	subCmd := exec.Command(sub, "-h", host, "-p", port, "-u", "esp32-cellar", "-P", pw, "-V", "mqttv5", "-q", "1",
		"-t", "fieldgate/esp32-cellar/cmd/#", "-C", "1", "-W", "10")
	subOut, err := subCmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := subCmd.Start(); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(subOut)
		for sc.Scan() {
			got <- sc.Text()
		}
		close(got)
	}()
	deadline := time.Now().Add(10 * time.Second)
	var msg string
	for msg == "" && time.Now().Before(deadline) {
		// Send until the subscription is in place.
		if out, err := exec.Command(pub, "-h", host, "-p", port, "-u", "ops", "-P", adminPW, "-q", "1",
			"-t", "fieldgate/esp32-cellar/cmd/interval", "-m", "30").CombinedOutput(); err != nil {
			t.Fatalf("admin mosquitto_pub: %v\n%s", err, out)
		}
		select {
		case msg = <-got:
		case <-time.After(300 * time.Millisecond):
		}
	}
	if msg != "30" {
		t.Errorf("mosquitto_sub received %q, want the command 30", msg)
	}
	_ = subCmd.Wait()

	d.Terminate(t)
	st, err := store.Open(store.Options{Path: filepath.Join(dir, "fieldgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	if rs, _ := st.Readings(store.Query{Source: "esp32-cellar", Quantity: "humidity"}); len(rs) != 1 || rs[0].Value != 81.5 {
		t.Errorf("stored %v", rs)
	}
	if dev, err := st.Device("esp32-cellar"); err != nil || dev.Messages == 0 {
		t.Errorf("device counters not written at shutdown: %+v %v", dev, err)
	}
}

func splitHostPort(addr string) (string, string, error) {
	i := len(addr) - 1
	for i >= 0 && addr[i] != ':' {
		i--
	}
	if i < 0 {
		return "", "", fmt.Errorf("no port in %q", addr)
	}
	return addr[:i], addr[i+1:], nil
}
