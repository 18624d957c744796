package broker

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"fieldgate/store"
)

// TestCommitWaitStartsItsTimerOnlyWhenAsked: a publish that never waits
// makes no timer, one that waits gets the whole timeout from then, and the
// next publish starts afresh.
func TestCommitWaitStartsItsTimerOnlyWhenAsked(t *testing.T) {
	var w commitWait
	ctx := w.start(time.Hour)
	if _, ok := ctx.Deadline(); ok || ctx.Err() != nil || w.ctx != nil {
		t.Fatalf("before a wait: deadline %v, err %v, timer made %v", ok, ctx.Err(), w.ctx != nil)
	}
	w.stop()

	ctx = w.start(time.Hour)
	before := time.Now()
	done := ctx.Done() // the wait begins: so does the timeout
	if d, ok := ctx.Deadline(); !ok || d.Before(before.Add(time.Hour)) {
		t.Errorf("deadline %v %v, want an hour from the first Done", d, ok)
	}
	w.stop()
	select {
	case <-done:
	default:
		t.Error("stop did not release the wait")
	}

	ctx = w.start(time.Millisecond)
	if ctx.Err() != nil {
		t.Fatalf("a new publish starts with the last one's error: %v", ctx.Err())
	}
	<-ctx.Done()
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("after the timeout: %v, want DeadlineExceeded", ctx.Err())
	}
	w.stop()
}

// fullStore stands in for a store whose commit queue is full (a stalled
// card): while full, every call waits on its context, as the store's
// back-pressure does, and fails with the context's error.
type fullStore struct {
	*store.Store
	full atomic.Bool
}

func (f *fullStore) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(30 * time.Second): // the test failed: let the broker close
		return errors.New("fullStore: the publish's context never ended")
	}
}

func (f *fullStore) AppendThen(ctx context.Context, rs []store.Reading, lead store.Lead, done func(error), flush func()) error {
	if f.full.Load() {
		return f.wait(ctx)
	}
	return f.Store.AppendThen(ctx, rs, lead, done, flush)
}

func (f *fullStore) Enqueue(ctx context.Context, rs ...store.Reading) error {
	if f.full.Load() {
		return f.wait(ctx)
	}
	return f.Store.Enqueue(ctx, rs...)
}

// TestAPublishWaitsForAFullQueueAtMostTheCommitTimeout: a connection's
// first publish is stored without a wait; once the store's queue is full,
// its next publish waits the commit timeout, is refused without a PUBACK,
// and the connection is closed so that the node sends it again later.
func TestAPublishWaitsForAFullQueueAtMostTheCommitTimeout(t *testing.T) {
	st, pw := testStore(t)
	f := &fullStore{Store: st}
	b := startBroker(t, f, Options{CommitTimeout: 200 * time.Millisecond})
	c := pipe(t, b, pw)
	c.send(qos1("fieldgate/esp32-a/temperature", 1, "21.5"))
	if ids := c.pubacks(1, func(uint16) {}); ids[0] != 1 {
		t.Fatalf("PUBACK %v", ids)
	}
	f.full.Store(true)
	c.send(qos1("fieldgate/esp32-a/temperature", 2, "21.6"))
	if !c.closedWithin(10 * time.Second) {
		t.Fatal("a publish that found the queue full for the whole commit timeout was not refused")
	}
	if s := b.Stats(); s.Readings != 1 || s.StoreFailures == 0 {
		t.Errorf("stats %+v, want 1 reading stored and the refusal counted", s)
	}
}
