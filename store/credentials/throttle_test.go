package credentials

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestWaitsGrowAfterTheFreeFailures(t *testing.T) {
	now := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	th := NewThrottle(Policy{Free: 3, Base: time.Second, Max: 10 * time.Second}, Policy{Free: 100, Base: time.Second, Max: time.Second},
		func() time.Time { return now })
	for i := range 2 {
		th.Fail("10.0.0.9", "admin")
		if w := th.Wait("10.0.0.9", "admin"); w != 0 {
			t.Fatalf("wait %v after %d failures, want none (3 attempts are free)", w, i+1)
		}
	}
	for _, want := range []time.Duration{1, 2, 4, 8, 10, 10} {
		th.Fail("10.0.0.9", "admin")
		if w := th.Wait("10.0.0.9", "someone-else"); w != want*time.Second {
			t.Fatalf("wait %v, want %v", w, want*time.Second)
		}
	}
	if w := th.Wait("10.0.0.10", "admin"); w != 0 {
		t.Errorf("another address waits %v for this one's failures", w)
	}
	now = now.Add(10 * time.Second)
	if w := th.Wait("10.0.0.9", "admin"); w != 0 {
		t.Errorf("still waiting %v once the wait passed", w)
	}
	th.Succeed("10.0.0.9", "admin")
	th.Fail("10.0.0.9", "admin")
	if w := th.Wait("10.0.0.9", "admin"); w != 0 {
		t.Errorf("a success did not reset the count: wait %v", w)
	}
	now = now.Add(2 * time.Hour) // an hour without failures forgets them
	for range 2 {
		th.Fail("10.0.0.9", "admin")
	}
	if w := th.Wait("10.0.0.9", "admin"); w != 0 {
		t.Errorf("wait %v", w)
	}
}

// TestAGuesserCannotLockTheOwnerOut: failures for an account from many
// addresses make the account wait everywhere but at the address it last
// logged in from.
func TestAGuesserCannotLockTheOwnerOut(t *testing.T) {
	now := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	th := NewThrottle(Policy{Free: 100, Base: time.Second, Max: time.Minute}, Policy{Free: 3, Base: time.Second, Max: time.Minute},
		func() time.Time { return now })
	th.Succeed("192.168.1.20", "esp32-a")
	for i := range 5 {
		th.Fail(fmt.Sprintf("192.168.1.%d", 100+i), "esp32-a")
	}
	if w := th.Wait("192.168.1.99", "esp32-a"); w == 0 {
		t.Error("a new address guessing the account does not wait")
	}
	if w := th.Wait("192.168.1.20", "esp32-a"); w != 0 {
		t.Errorf("the device at its own address waits %v", w)
	}
}

func TestKeysAreBounded(t *testing.T) {
	th := NewThrottle(Policy{Free: 1, Base: time.Second, Max: time.Minute}, Policy{Free: 1, Base: time.Second, Max: time.Minute}, nil)
	for i := range MaxKeys + 500 {
		th.Fail(fmt.Sprintf("10.1.%d.%d", i/256, i%256), fmt.Sprintf("made-up-%d", i))
	}
	if n := len(th.entries); n > 2*MaxKeys {
		t.Errorf("%d keys kept, want at most %d", n, 2*MaxKeys)
	}
}

// TestLongNamesCostAFixedSize: a guesser sending made-up 60 KB account
// names used to add 60 KB to the throttle per name, kept until 20,000 keys;
// every key now has a fixed size, and keys older than an hour are swept.
func TestLongNamesCostAFixedSize(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	th := NewThrottle(Policy{Free: 5, Base: time.Second, Max: time.Minute}, Policy{Free: 10, Base: time.Second, Max: time.Minute}, func() time.Time { return now })
	for i := range 300 {
		th.Fail("10.0.0.9", strings.Repeat("x", 60_000)+strconv.Itoa(i))
	}
	size := 0
	for k := range th.entries {
		size += len(k)
	}
	if size > 300*20+100 {
		t.Fatalf("300 failed 60 KB names hold %d bytes of keys", size)
	}
	now = now.Add(2 * time.Hour)
	th.Fail("10.0.0.10", "")
	if len(th.entries) != 1 {
		t.Errorf("%d keys two hours later, want only the new address", len(th.entries))
	}
}
