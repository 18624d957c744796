package receiver

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// admission bounds the requests handled at once. A request that finds
// every slot taken waits its turn, first come first served, for a short
// while behind a bounded number of others, and only then is refused: a
// fleet whose uploads come in bursts larger than the pool is served in
// milliseconds instead of being sent away for Retry-After seconds, and a
// crowd larger than the queue still costs the receiver nothing but a 503.
type admission struct {
	slot  chan struct{} // one per request handled
	queue chan struct{} // one per request waiting for a slot
	wait  time.Duration
	// waiting is the number of requests in the queue.
	waiting prometheus.Gauge
}

func newAdmission(inFlight, queued int, wait time.Duration, waiting prometheus.Gauge) *admission {
	return &admission{slot: make(chan struct{}, inFlight), queue: make(chan struct{}, queued), wait: wait, waiting: waiting}
}

// enter takes a slot for r, waiting as long as admission allows; release
// gives it back. It is false when r was not admitted: the queue was full,
// the wait ran out, or the client went away.
func (a *admission) enter(r *http.Request) bool {
	select {
	case a.slot <- struct{}{}:
		return true
	default:
	}
	select {
	case a.queue <- struct{}{}:
	default:
		return false
	}
	a.waiting.Inc()
	defer func() {
		a.waiting.Dec()
		<-a.queue
	}()
	t := time.NewTimer(a.wait)
	defer t.Stop()
	select {
	case a.slot <- struct{}{}: // a channel's blocked senders go first come, first served
		return true
	case <-t.C:
	case <-r.Context().Done():
	}
	return false
}

func (a *admission) release() { <-a.slot }
