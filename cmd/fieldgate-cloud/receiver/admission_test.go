package receiver

import (
	"net/http"
	"testing"
	"time"

	"fieldgate/uplink/wire"
)

// putLater sends b in the background; the answer comes on the channel.
func (r *receiver) putLater(b wire.BatchBody) <-chan answer {
	done := make(chan answer, 1)
	go func() { done <- r.put(r.tokens[b.Gateway], b, nil) }()
	return done
}

// TestABusyReceiverQueuesThenRefuses: with its one slot taken, a batch
// waits its turn and is stored once the slot is free, instead of being sent
// away for Retry-After; a batch beyond the queue is answered 503 at once.
func TestABusyReceiverQueuesThenRefuses(t *testing.T) {
	r := newReceiverWith(t, Options{MaxInFlight: 1, MaxQueued: 1, QueueWait: time.Minute, RetryAfter: time.Second},
		DBOptions{LockTimeout: time.Minute, StatementTimeout: time.Minute})
	release := r.holdBatches()
	first := r.putLater(batch("gw-a", 1, 1, 2))
	waitUntil(t, func() bool { return r.waitingOnLocks() == 1 }) // it holds the slot
	second := r.putLater(batch("gw-b", 1, 3))
	waitUntil(t, func() bool { return r.metric("fieldgate_cloud_requests_queued") == "1" })

	if a := r.put(r.tokens["gw-a"], batch("gw-a", 3, 4), nil); a.status != http.StatusServiceUnavailable || a.retryAfter != "1" {
		t.Fatalf("a batch beyond the queue: %+v, want 503 with Retry-After 1", a)
	}
	if got := r.metric("fieldgate_cloud_busy_total"); got != "1" {
		t.Errorf("busy counted %s times, want 1", got)
	}
	if got := r.metric("fieldgate_cloud_requests_queued"); got != "1" {
		t.Errorf("%s requests queued after a refusal, want the one still waiting", got)
	}

	release()
	for name, done := range map[string]<-chan answer{"the batch in the slot": first, "the queued batch": second} {
		if a := <-done; a.status != http.StatusOK {
			t.Errorf("%s: %+v, want 200", name, a)
		}
	}
	if n := r.count("SELECT count(*) FROM readings"); n != 3 {
		t.Errorf("%d readings stored, want the first two batches' 3", n)
	}
	if got := r.metric("fieldgate_cloud_requests_queued"); got != "0" {
		t.Errorf("%s requests still queued", got)
	}
}

// TestAQueuedBatchWaitsAtMostQueueWait: while the one slot stays taken, a
// queued batch is answered 503 once it waited QueueWait, and nothing of it
// is stored; its gateway sends it again after Retry-After.
func TestAQueuedBatchWaitsAtMostQueueWait(t *testing.T) {
	r := newReceiverWith(t, Options{MaxInFlight: 1, QueueWait: 100 * time.Millisecond, RetryAfter: time.Second},
		DBOptions{LockTimeout: time.Minute, StatementTimeout: time.Minute})
	release := r.holdBatches()
	first := r.putLater(batch("gw-a", 1, 1))
	waitUntil(t, func() bool { return r.waitingOnLocks() == 1 })
	if a := r.put(r.tokens["gw-b"], batch("gw-b", 1, 2), nil); a.status != http.StatusServiceUnavailable || a.retryAfter != "1" {
		t.Fatalf("a batch that waited its whole queue-wait: %+v, want 503 with Retry-After 1", a)
	}
	release()
	if a := <-first; a.status != http.StatusOK {
		t.Fatalf("the batch in the slot: %+v", a)
	}
	if n := r.count("SELECT count(*) FROM readings WHERE gateway_id = 'gw-b'"); n != 0 {
		t.Errorf("%d readings stored of the batch answered 503", n)
	}
	if a := r.put(r.tokens["gw-b"], batch("gw-b", 1, 2), nil); a.status != http.StatusOK {
		t.Errorf("sent again once the slot is free: %+v", a)
	}
}
