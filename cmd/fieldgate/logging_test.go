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
