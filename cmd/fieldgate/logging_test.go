package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestLimiterSuppressesRepeatsAndCountsThem(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(3, time.Minute, func() time.Time { return now })
	for i := range 3 {
		if ok, _ := l.allow("k"); !ok {
			t.Fatalf("record %d of the burst suppressed", i)
		}
	}
	for range 7 {
		if ok, _ := l.allow("k"); ok {
			t.Fatal("record past the burst let through")
		}
	}
	if ok, _ := l.allow("other"); !ok {
		t.Error("a different key was suppressed")
	}
	now = now.Add(time.Minute)
	ok, suppressed := l.allow("k")
	if !ok || suppressed != 7 {
		t.Errorf("after a minute: allowed %v, suppressed %d; want true, 7", ok, suppressed)
	}
}

func TestLoggerRateLimitsWarningsPerSource(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(&buf, "info", envMap(nil))
	a, b := log.With("source", "a"), log.With("source", "b")
	for range 20 {
		a.Warn("sensor read failed")
		b.Warn("sensor read failed")
		log.Info("status")
	}
	out := buf.String()
	if n := strings.Count(out, "source=a"); n != 5 {
		t.Errorf("%d warnings for source a, want the burst of 5:\n%s", n, out)
	}
	if n := strings.Count(out, "source=b"); n != 5 {
		t.Errorf("%d warnings for source b, want 5 (limits are per source)", n)
	}
	if n := strings.Count(out, "msg=status"); n != 20 {
		t.Errorf("%d info lines, want all 20: info is not rate-limited", n)
	}
}

func TestLoggerUnderJournaldOmitsTime(t *testing.T) {
	var buf bytes.Buffer
	newLogger(&buf, "debug", envMap(map[string]string{"JOURNAL_STREAM": "8:1234"})).Debug("hello", "k", 1)
	if got := buf.String(); got != "level=DEBUG msg=hello k=1\n" {
		t.Errorf("journald line %q", got)
	}
	buf.Reset()
	newLogger(&buf, "warn", envMap(nil)).Info("hidden")
	if buf.Len() != 0 {
		t.Errorf("info logged at level warn: %q", buf.String())
	}
}

// TestLoggerLimitsPerDeviceAndCutsLongValues: a refused publish logged ~3
// KB with its payload, and one hammering node silenced every other node's
// warnings. Each device (or address) now has its own limit, and every line
// stays short whatever the client sent.
func TestLoggerLimitsPerDeviceAndCutsLongValues(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(&buf, "info", envMap(map[string]string{"JOURNAL_STREAM": "8:1"}))
	long := strings.Repeat("fieldgate/esp32-a/", 900) // a 16 KiB topic
	for range 50 {
		log.Warn("mqtt: payload rejected", "device", "esp32-a", "topic", long, "err", "not a number")
	}
	log.Warn("mqtt: payload rejected", "device", "esp32-b", "topic", "fieldgate/esp32-b/t", "err", "not a number")
	log.Warn("mqtt: malformed packet; connection closed", "addr", "192.168.1.66")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 7 {
		t.Fatalf("%d lines, want esp32-a's burst of 5, esp32-b's and the address's:\n%s", len(lines), buf.String())
	}
	for _, l := range lines {
		if len(l) > 200 {
			t.Errorf("a line of %d bytes: %.120s…", len(l), l)
		}
	}
	if !strings.Contains(lines[5], "device=esp32-b") || !strings.Contains(lines[6], "addr=192.168.1.66") {
		t.Errorf("other devices' warnings suppressed:\n%s", buf.String())
	}
}
