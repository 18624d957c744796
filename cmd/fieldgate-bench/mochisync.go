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
	mu   sync.Mutex
	file *syncFile
	rec  []byte
}

// newSyncHook preallocates its file in dir (see newSyncFile).
func newSyncHook(dir string) (*syncHook, error) {
	f, err := newSyncFile(dir, "mochi-sync-*")
	if err != nil {
		return nil, err
	}
	return &syncHook{file: f}, nil
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
	err := h.file.write(h.rec)
	if err == nil {
		err = h.file.sync()
	}
	return pk, rejectOn(err)
}

// close removes the file.
func (h *syncHook) close() error { return h.file.close() }

// syncFile is a preallocated file that records are written to one after
// another, wrapping around at its end. Its callers serialize its use.
type syncFile struct {
	f         *os.File
	off       int64
	fdatasync func(fd int) error // unix.Fdatasync; tests stall or fail it
}

// syncFileSize is the preallocated file's size.
const syncFileSize = 8 << 20

// newSyncFile creates a file named by pattern in dir and preallocates it
// (zeros, synced, as fieldgate's log segments are), so that each sync
// flushes data only.
func newSyncFile(dir, pattern string) (*syncFile, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(make([]byte, syncFileSize)); err != nil {
		return nil, errors.Join(fmt.Errorf("preallocate %s: %w", f.Name(), err), f.Close(), os.Remove(f.Name()))
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return nil, errors.Join(fmt.Errorf("fdatasync %s: %w", f.Name(), err), f.Close(), os.Remove(f.Name()))
	}
	return &syncFile{f: f, fdatasync: unix.Fdatasync}, nil
}

// write writes rec after the last record, or at the file's start if it
// would not fit before its end.
func (sf *syncFile) write(rec []byte) error {
	if sf.off+int64(len(rec)) > syncFileSize {
		sf.off = 0
	}
	if _, err := sf.f.WriteAt(rec, sf.off); err != nil {
		return err
	}
	sf.off += int64(len(rec))
	return nil
}

// sync fdatasyncs what was written.
func (sf *syncFile) sync() error { return sf.fdatasync(int(sf.f.Fd())) }

// close closes and removes the file.
func (sf *syncFile) close() error {
	return errors.Join(sf.f.Close(), os.Remove(sf.f.Name()))
}
