package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestGatherWaitsForEveryAnsweredClient: after a commit that answered 3
// waiters while 2 more were queued behind it, the next leader gathers
// until all 5 are queued — however many of the 3 came back before it
// started, and whether it is one of them or the flusher.
func TestGatherWaitsForEveryAnsweredClient(t *testing.T) {
	for _, early := range []int{0, 1, 3} {
		t.Run(fmt.Sprintf("back-before-gather=%d", early), func(t *testing.T) {
			s := mustOpen(t, Options{Config: Config{CommitInterval: time.Hour}})
			c := s.c
			c.mu.Lock()
			c.answered, c.behind, c.syncTook, c.gatherMax = 3, 2, time.Hour, time.Hour
			c.leading = true // as while the last commit ran: callers queue, none leads
			c.mu.Unlock()
			t.Cleanup(func() {
				select { // frees a gather that would wait on (only if the test failed)
				case c.gathered <- struct{}{}:
				default:
				}
				c.mu.Lock()
				c.leading, c.answered, c.gatherMax = false, 0, gatherMax // Close commits the queue at once
				c.idle.Broadcast()
				c.mu.Unlock()
			})
			queue := func(i int) {
				t.Helper()
				if err := s.AppendThen(context.Background(), []Reading{reading("a", "temperature", i, 1)}, FlusherCommits, func(error) {}, nil); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 2 + early { // the 2 behind, then the early ones
				queue(i)
			}
			got := make(chan int, 1)
			go func() {
				c.mu.Lock()
				defer c.mu.Unlock()
				c.gather()
				got <- c.waiters
			}()
			if early < 3 {
				waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.gatherAt == 5 })
			}
			for i := 2 + early; i < 5; i++ {
				select {
				case n := <-got:
					t.Fatalf("gather ended with %d of 5 waiters queued", n)
				default:
				}
				queue(i)
			}
			select {
			case n := <-got:
				if n != 5 {
					t.Errorf("gather ended with %d waiters queued, want 5", n)
				}
			case <-time.After(20 * time.Second): // as waitFor: only a broken gather gets here
				t.Fatal("gather still waits with all 5 queued")
			}
		})
	}
}
