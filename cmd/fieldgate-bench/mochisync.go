package main

import (
	"errors"
	"fmt"
	"os"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/sys/unix"
)

// syncHook makes bare mochi durable the simplest way: each QoS 1 or 2
// publish's topic and payload are written to a preallocated file and
// fdatasynced in the publish hook, which mochi runs before it sends the
// PUBACK. Publishes sync one at a time. With one client that is the most a
// broker built on the library can do while syncing before each PUBACK: the
// floor fieldgate's one-client rate is held to, measured, where the
// ceiling of compare's table is a sum of two separate measures.
type syncHook struct {
	mqtt.HookBase
	mu  sync.Mutex
	f   *os.File
	off int64
	rec []byte
}

// syncFileSize is the preallocated file's size; records wrap around in it.
const syncFileSize = 8 << 20

// newSyncHook preallocates its file in dir (zeros, synced, as fieldgate's
// log segments are), so that each sync flushes data only.
func newSyncHook(dir string) (*syncHook, error) {
	f, err := os.CreateTemp(dir, "mochi-sync-*")
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(make([]byte, syncFileSize)); err != nil {
		return nil, fmt.Errorf("preallocate %s: %w", f.Name(), err)
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return nil, fmt.Errorf("fdatasync %s: %w", f.Name(), err)
	}
	return &syncHook{f: f}, nil
}

// ID implements mqtt.Hook.
func (h *syncHook) ID() string { return "sync-each-publish" }

// Provides implements mqtt.Hook.
func (h *syncHook) Provides(b byte) bool { return b == mqtt.OnPublish }

// OnPublish writes and syncs pk before mochi acknowledges it. A failed
// write or sync refuses the publish, as a durable broker must.
func (h *syncHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Qos == 0 {
		return pk, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rec = append(append(h.rec[:0], pk.TopicName...), pk.Payload...)
	if h.off+int64(len(h.rec)) > syncFileSize {
		h.off = 0
	}
	if _, err := h.f.WriteAt(h.rec, h.off); err != nil {
		return pk, packets.ErrRejectPacket
	}
	if err := unix.Fdatasync(int(h.f.Fd())); err != nil {
		return pk, packets.ErrRejectPacket
	}
	h.off += int64(len(h.rec))
	return pk, nil
}

// close removes the file.
func (h *syncHook) close() error {
	return errors.Join(h.f.Close(), os.Remove(h.f.Name()))
}
