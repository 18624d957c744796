package uplink

import (
	"strings"
	"testing"
	"time"
)

func TestHoldWords(t *testing.T) {
	if w := HoldWords(0, time.Hour); w != "" {
		t.Errorf("nothing held: %q", w)
	}
	w := HoldWords(54, 23*time.Hour+59*time.Minute+40*time.Second)
	for _, want := range []string{"54 readings wait for the system clock", "flagged unsynced in 24h0m0s (clock.upload_hold)", "clock.trust: system"} {
		if !strings.Contains(w, want) {
			t.Errorf("%q lacks %q", w, want)
		}
	}
	if w := HoldWords(3, 0); !strings.Contains(w, "as soon as it syncs") {
		t.Errorf("no limit known: %q", w)
	}
}
