package main

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"fieldgate/cmd/fieldgate/daemontest"
)

// mqttString is an MQTT length-prefixed string.
func mqttString(s string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...)
}

// mqttPacket prefixes body with a fixed header.
func mqttPacket(first byte, body []byte) []byte {
	out := []byte{first}
	for n := len(body); ; {
		b := byte(n % 128)
		if n /= 128; n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			break
		}
	}
	return append(out, body...)
}

// TestRefusalsLogOneShortLine does what a broken or hostile client does and
// reads the daemon's log: a refused 3.1.1 publish used to log ~3 KB with
// its payload, a stray byte a WARN with an empty message, and every API
// 4xx a line at info. Now each event is one line under 200 bytes, without
// the payload, at most a burst per device or address, and counted in
// /metrics.
func TestRefusalsLogOneShortLine(t *testing.T) {
	bin := daemontest.Build(t)
	cfg := mqttConfig(t, t.TempDir())
	pw := addDevice(t, cfg, "esp32-a")
	d := daemontest.Start(t, bin, cfg)
	defer d.Terminate(t)

	secret := strings.Repeat("SECRET-PAYLOAD-", 200)
	c, err := net.Dial("tcp", d.MQTT)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	connect := append(append(append(mqttString("MQTT"), 4, 0xC2, 0, 60), mqttString("a")...), append(mqttString("esp32-a"), mqttString(pw)...)...)
	if _, err := c.Write(mqttPacket(0x10, connect)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	ack := make([]byte, 4)
	if _, err := io.ReadFull(r, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("CONNACK % x, %v", ack, err)
	}
	bad := mqttPacket(0x32, append(append(mqttString("fieldgate/esp32-a/temperature"), 0, 1), "not-a-number"...))
	for range 20 {
		if _, err := c.Write(bad); err != nil { // 3.1.1: acknowledged, dropped
			t.Fatal(err)
		}
	}
	foreign := mqttPacket(0x32, append(append(mqttString("fieldgate/other/temperature"), 0, 5), secret...))
	if _, err := c.Write(foreign); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, r); err != nil { // PUBACKs, then the close
		t.Fatalf("the connection was not closed after the foreign publish: %v", err)
	}
	for i := range 30 {
		s, err := net.Dial("tcp", d.MQTT)
		if err != nil {
			t.Fatal(err)
		}
		stray := []byte{'x', 'y'}
		if i%2 == 1 {
			stray = []byte{0x10, 0x02, 0xff, 0xff} // a CONNECT that is not one
		}
		_, _ = s.Write(stray)
		_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.Copy(io.Discard, s)
		_ = s.Close()
	}
	for range 30 {
		for _, path := range []string{"/api/v1/nope", "/api/v1/sources/esp32-a/readings?from=yesterday"} {
			resp, err := http.Get(d.API + path)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
		}
	}
	metrics := daemontest.Get(t, d.API+"/metrics")
	for _, want := range []string{`fieldgate_mqtt_refused_total{reason="acl"} 1`, `fieldgate_mqtt_refused_total{reason="payload"} 20`, `fieldgate_mqtt_refused_total{reason="malformed"} 30`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", metrics)
	}
	counts := map[string]int{}
	for _, line := range d.Logged() {
		event := strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR")
		if (event && len(line) > 200) || strings.Contains(line, "SECRET") || strings.Contains(line, `msg=""`) {
			t.Errorf("log line of %d bytes: %.200s", len(line), line)
		}
		for _, what := range []string{"payload rejected", "malformed packet", "denied by ACL", "api request", "level=INFO msg=mqtt:"} {
			if strings.Contains(line, what) {
				counts[what]++
			}
		}
	}
	if counts["payload rejected"] > 5 || counts["malformed packet"] > 5 || counts["denied by ACL"] != 1 || counts["api request"] != 0 || counts["level=INFO msg=mqtt:"] != 0 {
		t.Errorf("lines logged per kind of event: %v; want at most a burst of 5 each, one for the ACL refusal, none for API 4xx or mochi's chatter", counts)
	}
}
