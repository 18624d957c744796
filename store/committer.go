package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// request is one Append or Enqueue call waiting for the committer.
type request struct {
	rs   []Reading
	done chan result // nil for Enqueue: nobody waits
}

type result struct {
	first uint64 // seq of rs[0]; the rest follow consecutively
	err   error
}

// committer is the single writer goroutine: it takes everything queued,
// writes it in one transaction, fsyncs, wakes the waiters, and repeats. There
// is no fixed delay when someone waits, so one client gets one commit per
// publish and many clients share commits (unlike bbolt's DB.Batch, whose
// 10 ms delay caps a lone client at ~90 commits/s). Readings nobody waits for
// are held up to CommitInterval so that they share commits too.
type committer struct {
	s *Store

	gate   sync.RWMutex // senders hold it shared; close takes it to stop them
	closed bool
	reqs   chan *request
	quit   chan struct{}
	done   chan struct{}

	// Owned by the run goroutine.
	carry   []Reading     // queued readings whose commit failed, retried next
	backoff time.Duration // wait before retrying carry after a failure

	drops dropCounter // dropped readings not yet persisted

	commits      atomic.Uint64
	committed    atomic.Uint64
	lastCommitNs atomic.Int64
	errMu        sync.Mutex
	lastErr      error
	failingSince time.Time
}

func newCommitter(s *Store) *committer {
	c := &committer{
		s:    s,
		reqs: make(chan *request, s.opts.QueueSize),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	c.drops.init()
	go c.run()
	return c
}

// Append stores rs and returns once the transaction holding them is on disk
// (fsync'd). On success it sets each reading's Seq. All readings of one call
// get consecutive sequence numbers and are committed together or not at all.
// If ctx ends first Append returns its error; the readings may still be
// committed later, so a caller must treat that as "not acknowledged".
func (s *Store) Append(ctx context.Context, rs ...Reading) error {
	if len(rs) == 0 {
		return nil
	}
	req, err := newRequest(rs, true)
	if err != nil {
		return err
	}
	if err := s.c.send(ctx, req); err != nil {
		return err
	}
	select {
	case res := <-req.done:
		if res.err != nil {
			return res.err
		}
		for i := range rs {
			rs[i].Seq = res.first + uint64(i)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("store: append %d readings: %w", len(rs), ctx.Err())
	}
}

// Enqueue queues rs for the next commit and returns without waiting for it:
// at most CommitInterval of queued readings is lost in a crash. It blocks
// only while the queue is full (back-pressure), until ctx ends.
func (s *Store) Enqueue(ctx context.Context, rs ...Reading) error {
	if len(rs) == 0 {
		return nil
	}
	req, err := newRequest(rs, false)
	if err != nil {
		return err
	}
	return s.c.send(ctx, req)
}

// Ping returns once the committer has taken a request and answered it: a
// liveness probe for the watchdog. It fails when ctx ends first — the
// committer is wedged (a hung disk, a stuck fsync) or the queue is full —
// or when commits are failing.
func (s *Store) Ping(ctx context.Context) error {
	req := &request{done: make(chan result, 1)}
	if err := s.c.send(ctx, req); err != nil {
		return err
	}
	select {
	case res := <-req.done:
		return res.err
	case <-ctx.Done():
		return fmt.Errorf("store: committer did not answer: %w", ctx.Err())
	}
}

// newRequest validates rs and copies them, so that the caller may reuse its
// slice as soon as Append or Enqueue returns, whatever happened.
func newRequest(rs []Reading, wait bool) (*request, error) {
	for i := range rs {
		if err := rs[i].Validate(); err != nil {
			return nil, fmt.Errorf("reading %d of %d: %w", i+1, len(rs), err)
		}
	}
	req := &request{rs: make([]Reading, len(rs))}
	for i, r := range rs {
		r.Time = r.Time.UTC()
		req.rs[i] = r
	}
	if wait {
		req.done = make(chan result, 1)
	}
	return req, nil
}

func (c *committer) send(ctx context.Context, req *request) error {
	c.gate.RLock()
	defer c.gate.RUnlock()
	if c.closed {
		return ErrClosed
	}
	select {
	case c.reqs <- req:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("store: commit queue full: %w", ctx.Err())
	}
}

func (c *committer) run() {
	defer close(c.done)
	var batch []*request
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		if len(batch) == 0 && len(c.carry) == 0 {
			select {
			case r := <-c.reqs:
				batch = append(batch, r)
			case <-c.quit:
				c.final(nil)
				return
			}
		}
		batch = c.gather(batch)
		if !hasWaiter(batch) {
			wait := c.s.opts.CommitInterval
			if len(c.carry) > 0 && c.backoff > wait {
				wait = c.backoff
			}
			timer.Reset(wait)
		collect:
			for !hasWaiter(batch) && count(batch) < c.s.opts.MaxBatch {
				select {
				case r := <-c.reqs:
					batch = append(batch, r)
				case <-timer.C:
					break collect
				case <-c.quit:
					timer.Stop()
					c.final(batch)
					return
				}
			}
			timer.Stop()
		}
		c.commit(batch)
		clear(batch)
		batch = batch[:0]
	}
}

// gather adds what is already queued to batch, up to MaxBatch readings.
func (c *committer) gather(batch []*request) []*request {
	for n := count(batch); n < c.s.opts.MaxBatch; {
		select {
		case r := <-c.reqs:
			batch = append(batch, r)
			n += len(r.rs)
		default:
			return batch
		}
	}
	return batch
}

// final commits batch and everything still queued. It runs after close has
// stopped new sends, so the queue cannot grow.
func (c *committer) final(batch []*request) {
	for {
		batch = c.gather(batch)
		if len(batch) == 0 && len(c.carry) == 0 {
			return
		}
		c.commit(batch)
		clear(batch)
		batch = batch[:0]
		if len(c.carry) > 0 {
			c.s.log.Error("store: queued readings could not be committed before shutdown", "readings", len(c.carry), "err", c.err())
			return
		}
	}
}

func hasWaiter(batch []*request) bool {
	for _, r := range batch {
		if r.done != nil {
			return true
		}
	}
	return false
}

func count(batch []*request) int {
	n := 0
	for _, r := range batch {
		n += len(r.rs)
	}
	return n
}

// commit writes carry and batch in one transaction and answers the waiters.
func (c *committer) commit(batch []*request) {
	rs := c.carry
	queued := len(c.carry)
	for _, r := range batch {
		rs = append(rs, r.rs...)
		if r.done == nil {
			queued += len(r.rs)
		}
	}
	carried := len(c.carry)
	if len(rs) == 0 { // only pings: answer with the state of the last commit
		err := c.err()
		for _, r := range batch {
			r.done <- result{err: err}
		}
		return
	}
	began := time.Now()
	first, err := c.s.write(rs, &c.drops)
	switch {
	case err == nil:
		if c.s.opts.OnCommit != nil {
			for i := range rs {
				rs[i].Seq = first + uint64(i)
			}
			c.s.opts.OnCommit(rs, time.Since(began))
		}
		c.carry = nil
		c.backoff = 0
		c.commits.Add(1)
		c.committed.Add(uint64(len(rs)))
		c.lastCommitNs.Store(c.s.opts.Now().UnixNano())
		c.setErr(nil)
		next := first + uint64(carried)
		for _, r := range batch {
			if r.done != nil {
				r.done <- result{first: next}
			}
			next += uint64(len(r.rs))
		}
		return
	case errors.Is(err, ErrFull):
		// reject_new: nothing of this commit is stored; waiters learn it and
		// their clients may retry, queued readings are lost and counted.
		c.carry = nil
		c.drops.add(reasonFullRejectNew, uint64(queued))
	default:
		c.setErr(err)
		c.keepQueued(batch)
	}
	for _, r := range batch {
		if r.done != nil {
			r.done <- result{err: err}
		}
	}
}

// keepQueued moves the queued readings of a failed commit into carry, so that
// a full disk or a transient I/O error costs no sensor data until carry
// overflows; then the oldest are dropped and counted.
func (c *committer) keepQueued(batch []*request) {
	for _, r := range batch {
		if r.done == nil {
			c.carry = append(c.carry, r.rs...)
		}
	}
	if over := len(c.carry) - c.s.opts.CarryLimit; over > 0 {
		c.drops.add(reasonCommitFailed, uint64(over))
		c.carry = append(c.carry[:0:0], c.carry[over:]...)
	}
	c.backoff = min(max(2*c.backoff, 100*time.Millisecond), 5*time.Second)
}

func (c *committer) setErr(err error) {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	switch {
	case err == nil:
		c.lastErr, c.failingSince = nil, time.Time{}
	case c.lastErr == nil:
		c.lastErr, c.failingSince = err, c.s.opts.Now()
		c.s.log.Error("store: commit failed", "err", err)
	default:
		c.lastErr = err
	}
}

func (c *committer) err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.lastErr
}

// close stops new sends, commits what is queued and waits for the goroutine.
func (c *committer) close() error {
	c.gate.Lock()
	c.closed = true
	c.gate.Unlock()
	close(c.quit)
	<-c.done
	if len(c.carry) > 0 {
		return fmt.Errorf("store: %d queued readings lost at shutdown: %w", len(c.carry), c.err())
	}
	return nil
}
