package main

import (
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// groupHook makes bare mochi durable with the least a group commit needs:
// each QoS 1 or 2 publish's topic and payload join a queue in the publish
// hook, which mochi runs before it sends the PUBACK, and the first
// publisher that finds no sync running leads. The leader writes everything
// queued in one write, fdatasyncs it once, tells each publisher of its
// group the result, and hands the leadership to the first that queued
// during the sync (as LevelDB's writers do). It does not wait for more to
// gather. With many clients it is the library's own floor for a broker
// that syncs before each PUBACK: what fieldgate's CPU and rate at 50
// clients are held to, without fieldgate's decoding, head, checkpoints
// and limits.
type groupHook struct {
	mqtt.HookBase
	file *syncFile

	mu      sync.Mutex
	queue   []*groupWaiter
	leading bool
	buf     []byte // the leader's: the records of its group, one write
}

// groupWaiter is one publish waiting for its group's sync.
type groupWaiter struct {
	rec []byte
	ch  chan groupSignal
}

// groupSignal tells a waiter its group's result, or that it leads next.
type groupSignal struct {
	lead bool
	err  error
}

// newGroupHook preallocates its file in dir (see newSyncFile).
func newGroupHook(dir string) (*groupHook, error) {
	f, err := newSyncFile(dir, "mochi-group-*")
	if err != nil {
		return nil, err
	}
	return &groupHook{file: f}, nil
}

// ID implements mqtt.Hook.
func (h *groupHook) ID() string { return "group-sync" }

// Provides implements mqtt.Hook.
func (h *groupHook) Provides(b byte) bool { return b == mqtt.OnPublish }

// OnPublish returns once pk's topic and payload are synced with its group.
// A failed write or sync refuses the publish, as a durable broker must.
func (h *groupHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Qos == 0 {
		return pk, nil
	}
	w := &groupWaiter{
		rec: append([]byte(pk.TopicName), pk.Payload...),
		ch:  make(chan groupSignal, 1),
	}
	h.mu.Lock()
	h.queue = append(h.queue, w)
	lead := !h.leading
	h.leading = true
	h.mu.Unlock()
	if !lead {
		sig := <-w.ch
		if !sig.lead {
			return pk, rejectOn(sig.err)
		}
	}
	return pk, rejectOn(h.lead(w))
}

// lead commits everything queued, which holds w, and returns w's result.
func (h *groupHook) lead(w *groupWaiter) error {
	h.mu.Lock()
	group := h.queue
	h.queue = nil
	h.mu.Unlock()
	h.buf = h.buf[:0]
	for _, o := range group {
		h.buf = append(h.buf, o.rec...)
	}
	err := h.file.write(h.buf)
	if err == nil {
		err = h.file.sync()
	}
	for _, o := range group {
		if o != w {
			o.ch <- groupSignal{err: err}
		}
	}
	h.mu.Lock()
	if len(h.queue) > 0 {
		h.queue[0].ch <- groupSignal{lead: true}
	} else {
		h.leading = false
	}
	h.mu.Unlock()
	return err
}

// rejectOn is mochi's refusal of a publish when err is not nil.
func rejectOn(err error) error {
	if err != nil {
		return packets.ErrRejectPacket
	}
	return nil
}

// close removes the file.
func (h *groupHook) close() error { return h.file.close() }
