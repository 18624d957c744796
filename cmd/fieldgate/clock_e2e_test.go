package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"

	"fieldgate/cmd/fieldgate/daemontest"
	"fieldgate/uplink/sink"
)

// bootedWrong is a Pi that booted without network: its wall clock runs from
// the time fake-hwclock restored until sync steps it to the truth.
type bootedWrong struct {
	mu     sync.Mutex
	start  time.Time     // real time the machine "booted" (minus boot0)
	wall0  time.Time     // what the wall clock said at start
	boot0  time.Duration // time since boot at start
	synced bool
}

func (b *bootedWrong) Wall() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.wall0.Add(time.Since(b.start))
}

func (b *bootedWrong) SinceBoot() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.boot0 + time.Since(b.start)
}

func (b *bootedWrong) NTPSynced() (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.synced, nil
}

// sync steps the wall clock to truth, as timesyncd does.
func (b *bootedWrong) sync(truth time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.wall0, b.synced = truth.Add(-time.Since(b.start)), true
}

// TestClockRepairThroughTheDaemon boots the gateway with its clock eight
// months behind: sensor and MQTT readings are stored flagged unsynced and
// held back from the cloud; when NTP steps the clock they are repaired and
// reach the cloud with their true times, each once.
func TestClockRepairThroughTheDaemon(t *testing.T) {
	dir := t.TempDir()
	sk := sink.New("tok")
	srv := httptest.NewServer(sk)
	defer srv.Close()
	cfg := daemontest.WriteConfig(t, fmt.Sprintf(`data_dir: %s
sensors:
  - name: bench
    driver: sim
    interval: 1s
mqtt:
  listen: 127.0.0.1:0
api:
  listen: 127.0.0.1:0
uplink:
  url: %s
  token: tok
  flush_interval: 50ms
  backoff_base: 20ms
  backoff_max: 200ms
`, dir, srv.URL))
	pw := addDevice(t, cfg, "esp32-a")

	shutdown := time.Date(2026, 3, 2, 17, 4, 0, 0, time.UTC) // fake-hwclock's last save
	clk := &bootedWrong{start: time.Now(), wall0: shutdown, boot0: 20 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- runDaemon(ctx, func() {}, []string{"-config", cfg}, envMap(nil), logs, clk) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	}()
	daemontest.WaitUntil(t, 20*time.Second, func() bool { return daemontest.LogRunning.MatchString(logs.String()) })
	api := &daemontest.API{TB: t, Base: daemontest.LogAPI.FindStringSubmatch(logs.String())[1]}

	c := paho3.NewClient(paho3.NewClientOptions().AddBroker("tcp://" + daemontest.LogMQTT.FindStringSubmatch(logs.String())[1]).
		SetClientID("a").SetUsername("esp32-a").SetPassword(pw).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	for i := range 3 {
		if tok := c.Publish("fieldgate/esp32-a/temperature", 1, false, strconv.Itoa(20+i)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	var status map[string]any
	daemontest.WaitUntil(t, 20*time.Second, func() bool {
		_, status = api.Do("GET", "/api/v1/status", nil)
		return status["clock_repair"].(map[string]any)["pending"].(float64) >= 6
	})
	if status["clock"] != "unsynced" || status["health"].(map[string]any)["state"] != "degraded" {
		t.Errorf("status before the sync: clock %v, health %v", status["clock"], status["health"])
	}
	// A newcomer without NTP saw "starting" and no reason: the hold is now
	// said in words, with how to change it.
	daemontest.WaitUntil(t, 20*time.Second, func() bool {
		_, status = api.Do("GET", "/api/v1/status", nil)
		return status["uplink"].(map[string]any)["state"] == "held"
	})
	up := status["uplink"].(map[string]any)
	if held, _ := up["held"].(string); !strings.Contains(held, "clock.trust: system") || up["held_readings"].(float64) < 6 || up["hold_left_seconds"].(float64) <= 0 {
		t.Errorf("uplink while held: %v", up)
	}
	if reasons := fmt.Sprint(status["health"].(map[string]any)["reasons"]); !strings.Contains(reasons, "uploads held") {
		t.Errorf("health reasons do not say uploads are held: %s", reasons)
	}
	if n := len(sk.Readings()); n != 0 {
		t.Fatalf("the cloud got %d readings before the clock synced", n)
	}

	truth := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	jump := truth.Sub(clk.Wall())
	clk.sync(truth)
	bootWall := truth.Add(-clk.SinceBoot())
	daemontest.WaitUntil(t, 20*time.Second, func() bool {
		_, status = api.Do("GET", "/api/v1/status", nil)
		return status["clock"] == "synced" && status["clock_repair"].(map[string]any)["pending"].(float64) == 0
	})
	fix := status["clock_repair"].(map[string]any)
	if fix["repaired"].(float64) < 6 || fix["stranded"].(float64) != 0 {
		t.Errorf("clock_repair = %v, want ≥ 6 repaired, none stranded", fix)
	}
	if step := time.Duration(fix["step_seconds"].(float64) * float64(time.Second)); (step - jump).Abs() > time.Second {
		t.Errorf("step = %v, want %v", step, jump)
	}
	if !bytes.Contains([]byte(logs.String()), []byte(`msg="clock synchronised"`)) {
		t.Error("no log line for the sync")
	}
	daemontest.WaitUntil(t, 20*time.Second, func() bool {
		n := 0
		for _, r := range sk.Readings() {
			if r.Source == "esp32-a" {
				n++
			}
		}
		return n == 3
	})
	now := truth.Add(time.Minute)
	for id, r := range sk.Readings() {
		at, err := time.Parse(time.RFC3339Nano, r.Time)
		if err != nil || r.Clock != "synced" || at.Before(bootWall) || at.After(now) {
			t.Errorf("reading %s reached the cloud at %s (%s), want a synced time after the true boot %s", id, r.Time, r.Clock, bootWall)
		}
	}
}
