package broker

import (
	"context"
	"time"
)

// commitWait is the context a publish hands the store: it bounds by the
// commit timeout how long the read goroutine waits for room in the commit
// queue (QoS 0 and 1) or for the commit itself (QoS 2). The store consults
// a context only when it has to wait, so the timer is made only then, and
// the bound counts from that moment: the few microseconds since the
// publish arrived do not matter to a timeout of seconds. A publish that
// finds room — all of them, unless the disk stalls — costs no allocation,
// where context.WithTimeout cost four.
//
// One lives in each connection's identity and serves one publish at a
// time: only the connection's read goroutine uses it, and the store keeps
// no context past the call it was given to.
type commitWait struct {
	timeout time.Duration
	ctx     context.Context // made by the first Done
	cancel  context.CancelFunc
}

// start readies w for one publish; stop must follow once the store call
// returned.
func (w *commitWait) start(timeout time.Duration) context.Context {
	w.timeout = timeout
	return w
}

// stop releases the timer, if one was made.
func (w *commitWait) stop() {
	if w.cancel != nil {
		w.cancel()
		w.ctx, w.cancel = nil, nil
	}
}

// Deadline reports none until a wait began; then the wait's.
func (w *commitWait) Deadline() (time.Time, bool) {
	if w.ctx == nil {
		return time.Time{}, false
	}
	return w.ctx.Deadline()
}

// Done starts the timeout, the first time it is asked for.
func (w *commitWait) Done() <-chan struct{} {
	if w.ctx == nil {
		w.ctx, w.cancel = context.WithTimeout(context.Background(), w.timeout)
	}
	return w.ctx.Done()
}

// Err is context.DeadlineExceeded once a wait that began ran out.
func (w *commitWait) Err() error {
	if w.ctx == nil {
		return nil
	}
	return w.ctx.Err()
}

// Value holds nothing.
func (w *commitWait) Value(any) any { return nil }
