package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

// TestSyncHookWritesEachAcknowledgedPublish: a QoS 1 publish's topic and
// payload are in the file when the hook returns (mochi then sends the
// PUBACK), one after another; a QoS 0 publish writes nothing.
func TestSyncHookWritesEachAcknowledgedPublish(t *testing.T) {
	h, err := newSyncHook(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	pub := func(qos byte, topic, payload string) {
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos}, TopicName: topic, Payload: []byte(payload)}
		if _, err := h.OnPublish(nil, pk); err != nil {
			t.Fatal(err)
		}
	}
	pub(1, "a/b", "21.5")
	pub(0, "c/d", "ignored")
	pub(1, "e/f", "22")
	got, err := os.ReadFile(h.file.f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if want := "a/b21.5e/f22"; !bytes.HasPrefix(got, []byte(want)) || got[len(want)] != 0 {
		t.Errorf("the file begins %q, want %q then zeros", got[:20], want)
	}
	if len(got) != syncFileSize {
		t.Errorf("the file holds %d bytes, want the %d preallocated", len(got), syncFileSize)
	}
}
