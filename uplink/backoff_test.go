package uplink

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestFullJitterBounds checks the statistics of the backoff with a seeded
// source: every wait in [0, min(max, base·2^attempt)), and the waits spread
// over that whole range (mean near half of it, both ends reached), which is
// what keeps a fleet from retrying in step.
func TestFullJitterBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 7))
	base, maxWait := time.Second, 5*time.Minute
	for attempt := range 12 {
		ceiling := min(base<<attempt, maxWait)
		const n = 5000
		var sum, lo, hi time.Duration
		lo = ceiling
		for range n {
			d := fullJitter(rng, base, maxWait, attempt)
			if d < 0 || d >= ceiling {
				t.Fatalf("attempt %d: wait %v outside [0, %v)", attempt, d, ceiling)
			}
			sum += d
			lo, hi = min(lo, d), max(hi, d)
		}
		mean := sum / n
		if mean < ceiling*45/100 || mean > ceiling*55/100 {
			t.Errorf("attempt %d: mean wait %v, want about %v", attempt, mean, ceiling/2)
		}
		if lo > ceiling/50 || hi < ceiling*49/50 {
			t.Errorf("attempt %d: waits span %v–%v of [0, %v): not full jitter", attempt, lo, hi, ceiling)
		}
	}
	if d := fullJitter(rng, base, maxWait, 200); d >= maxWait {
		t.Errorf("attempt 200: %v, want under the %v cap (no overflow)", d, maxWait)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	behind := now.Add(-72 * time.Hour) // a Pi whose clock is three days behind
	for _, tc := range []struct {
		h, date string
		now     time.Time
		want    time.Duration
		ok      bool
	}{
		{"120", "", now, 2 * time.Minute, true},
		{" 0 ", "", now, 0, true},
		{"Sun, 22 Nov 2026 10:00:30 GMT", "", now, 30 * time.Second, true},
		{"Sun, 22 Nov 2026 09:00:00 GMT", "", now, 0, true}, // in the past: retry now
		{"-5", "", now, 0, false},
		{"soon", "", now, 0, false},
		{"", "", now, 0, false},
		{"999999999", "", now, time.Hour, true}, // capped at an hour
		// A date is measured against the answer's Date, not a wrong clock.
		{"Sun, 22 Nov 2026 10:00:30 GMT", "Sun, 22 Nov 2026 10:00:00 GMT", behind, 30 * time.Second, true},
		{"Sun, 22 Nov 2026 10:00:30 GMT", "", behind, time.Hour, true}, // no Date: capped
	} {
		got, ok := retryAfter(tc.h, tc.date, tc.now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q, Date %q) = %v, %v; want %v, %v", tc.h, tc.date, got, ok, tc.want, tc.ok)
		}
	}
}

func TestEncodeBatchIsDeterministic(t *testing.T) {
	st := testStore(t, 50)
	rs, err := st.ReadingsAfter(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, a, err := encodeBatch("fg-test", "0123456789abcdef", 1, 50, rs)
	if err != nil {
		t.Fatal(err)
	}
	_, b, err := encodeBatch("fg-test", "0123456789abcdef", 1, 50, rs)
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Fatal("the same readings encoded to different bodies")
	}
}
