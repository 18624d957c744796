package store

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestSyncWindowSpacesSyncs: with SyncWindow, a client in a closed loop
// (the next reading once the last is durable) gets one sync per window, and
// every reading that queued while a sync ran goes into the next sync, one
// for all of them. Only lower bounds on time are checked: a loaded machine
// can make syncs later, never sooner.
func TestSyncWindowSpacesSyncs(t *testing.T) {
	const window = 200 * time.Millisecond
	fs, wedge := wedgeableFS(t)
	s := mustOpen(t, Options{LogFS: fs, Config: Config{SyncWindow: window}})

	start := time.Now()
	for i := range 4 {
		mustAppend(t, s, reading("a", "temperature", i, 1))
	}
	if d := time.Since(start); d < 3*window {
		t.Errorf("4 appends in a closed loop took %s: syncs less than %s apart", d, window)
	}
	if n := s.Stats().Commits; n != 4 {
		t.Errorf("%d syncs for 4 appends one after another, want 4", n)
	}

	before := s.Stats().Commits
	entered, release := wedge(s)
	var once sync.Once
	t.Cleanup(func() { once.Do(release) }) // before Close, should the test fail
	began := time.Now()                    // its sync begins later than this
	first := make(chan error, 1)
	go func() { first <- s.Append(context.Background(), reading("a", "temperature", 10, 1)) }()
	<-entered // its sync hangs, as on a slow card
	const clients = 10
	done := make(chan error, clients)
	for i := range clients {
		go func() { done <- s.Append(context.Background(), reading("b", "temperature", i, 1)) }()
	}
	waitFor(t, func() bool { return s.Stats().Queued == clients })
	once.Do(release)
	mustDo(t, <-first)
	for range clients {
		mustDo(t, <-done)
	}
	if d := time.Since(began); d < window {
		t.Errorf("the readings queued during a sync were durable %s after it began: sooner than the window", d)
	}
	if n := s.Stats().Commits - before; n != 2 {
		t.Errorf("%d syncs for one reading and %d that queued during its sync, want 2", n, clients)
	}
	if got := s.Stats().Readings; got != 4+1+clients {
		t.Errorf("%d readings stored, want %d", got, 4+1+clients)
	}
}
