package broker

import (
	"errors"
	"testing"
	"time"

	"fieldgate/store"
)

// TestCountersAreRightAcrossAFlush reads a device live while a flush of its
// counters is being written, after it landed, and after a flush failed:
// the counters never dip (the stored value without the delta) nor count
// the delta twice, and the last error stays.
func TestCountersAreRightAcrossAFlush(t *testing.T) {
	st, _ := testStore(t)
	if err := st.UpdateDevices(map[string]func(*store.Device){"esp32-a": func(d *store.Device) { d.Messages, d.Readings = 10, 20 }}); err != nil {
		t.Fatal(err)
	}
	a := &activity{load: st.Device}
	now := time.Now()
	a.message("esp32-a", now, 2, nil)
	a.message("esp32-a", now, 0, errors.New("payload: not a number"))
	check := func(when string, messages, readings, rejected uint64) {
		t.Helper()
		d, err := st.Device("esp32-a")
		if err != nil {
			t.Fatal(err)
		}
		d = a.live(d)
		if d.Messages != messages || d.Readings != readings || d.Rejected != rejected || d.LastError != "payload: not a number" {
			t.Errorf("%s: messages %d readings %d rejected %d last error %q; want %d %d %d and the error",
				when, d.Messages, d.Readings, d.Rejected, d.LastError, messages, readings, rejected)
		}
	}
	check("before any flush", 12, 22, 1)

	gate := &gatedUpdater{st: st, entered: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- a.flush(gate) }()
	<-gate.entered
	check("while the flush is written", 12, 22, 1)
	a.message("esp32-a", now, 1, nil) // arrives during the flush
	close(gate.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	check("after the flush landed", 13, 23, 1)

	if err := a.flush(failingUpdater{}); err == nil {
		t.Fatal("a failing store did not fail the flush")
	}
	check("after a failed flush", 13, 23, 1)
	if err := a.flush(st); err != nil {
		t.Fatal(err)
	}
	d, _ := st.Device("esp32-a")
	if d.Messages != 13 || d.Readings != 23 || d.Rejected != 1 {
		t.Errorf("stored after the flushes: %d %d %d, want 13 23 1 (what the failed flush held, written once)", d.Messages, d.Readings, d.Rejected)
	}
	check("at the end", 13, 23, 1)
}

// failingUpdater fails every write.
type failingUpdater struct{}

func (failingUpdater) UpdateDevices(map[string]func(*store.Device)) error {
	return errors.New("disk full")
}
