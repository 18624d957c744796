package main

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// stalledSync makes h's first fdatasync wait until release is closed,
// and its second fail with failSecond if that is not nil; it counts the
// syncs.
type stalledSync struct {
	entered, release chan struct{}
	failSecond       error
	mu               sync.Mutex
	calls            int
}

func stallSyncs(h *groupHook, failSecond error) *stalledSync {
	s := &stalledSync{entered: make(chan struct{}), release: make(chan struct{}), failSecond: failSecond}
	real := h.file.fdatasync
	h.file.fdatasync = func(fd int) error {
		s.mu.Lock()
		s.calls++
		n := s.calls
		s.mu.Unlock()
		switch {
		case n == 1:
			close(s.entered)
			<-s.release
		case n == 2 && s.failSecond != nil:
			return s.failSecond
		}
		return real(fd)
	}
	return s
}

func (s *stalledSync) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// publishAll publishes one QoS 1 packet per topic through h at once and
// returns each one's error, in topics' order.
func publishAll(h *groupHook, topics []string) []error {
	errs := make([]error, len(topics))
	var wg sync.WaitGroup
	for i, topic := range topics {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = h.OnPublish(nil, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: topic, Payload: []byte("|")})
		}()
	}
	wg.Wait()
	return errs
}

// recv returns what ch gives, failing t if that takes 10 s: a publish
// that nobody leads waits for ever.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("publishes still wait after 10 s")
		panic("unreachable")
	}
}

// queued waits until n publishes wait in h's queue.
func queued(t *testing.T, h *groupHook, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		k := len(h.queue)
		h.mu.Unlock()
		if k == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d publishes queued, want %d", k, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroupHookSharesASyncAmongWhatQueuedDuringIt: while one publish's
// sync runs, the publishes that arrive wait for it and then share one
// write and one sync; each returns only once its record is on disk.
func TestGroupHookSharesASyncAmongWhatQueuedDuringIt(t *testing.T) {
	h, err := newGroupHook(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	s := stallSyncs(h, nil)
	first := make(chan error, 1)
	go func() { first <- publishAll(h, []string{"lead/"})[0] }()
	<-s.entered
	var topics []string
	for i := range 8 {
		topics = append(topics, fmt.Sprintf("n%d/", i))
	}
	done := make(chan []error, 1)
	go func() { done <- publishAll(h, topics) }()
	queued(t, h, len(topics))
	close(s.release)
	if err := recv(t, first); err != nil {
		t.Fatalf("the leader's publish: %v", err)
	}
	for i, err := range recv(t, done) {
		if err != nil {
			t.Errorf("publish %d: %v", i, err)
		}
	}
	if n := s.count(); n != 2 {
		t.Errorf("%d syncs, want 2: the first publish's, and one for the 8 that queued during it", n)
	}
	got, err := os.ReadFile(h.file.f.Name())
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range append(topics, "lead/") {
		if !bytes.Contains(got, []byte(topic+"|")) {
			t.Errorf("%s's record is not in the file", topic)
		}
	}
}

// TestGroupHookRefusesTheGroupOfAFailedSync: every publish of a group
// whose sync failed is refused (mochi then sends no success PUBACK), and
// the publishes after it are led and stored as usual.
func TestGroupHookRefusesTheGroupOfAFailedSync(t *testing.T) {
	h, err := newGroupHook(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	s := stallSyncs(h, syscall.EIO)
	first := make(chan error, 1)
	go func() { first <- publishAll(h, []string{"lead/"})[0] }()
	<-s.entered
	done := make(chan []error, 1)
	go func() { done <- publishAll(h, []string{"a/", "b/", "c/"}) }()
	queued(t, h, 3)
	close(s.release)
	if err := recv(t, first); err != nil {
		t.Errorf("the publish synced before the failure: %v", err)
	}
	for i, err := range recv(t, done) {
		if err != packets.ErrRejectPacket {
			t.Errorf("publish %d of the failed group: %v, want %v", i, err, packets.ErrRejectPacket)
		}
	}
	if errs := publishAll(h, []string{"d/"}); errs[0] != nil {
		t.Errorf("a publish after the failed sync: %v", errs[0])
	}
	if n := s.count(); n != 3 {
		t.Errorf("%d syncs, want 3", n)
	}
}
