package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"fieldgate/store/wal"
)

// request is one Append, Enqueue or Ping waiting for the committer.
type request struct {
	rs    []Reading
	done  chan result // nil for Enqueue: nobody waits
	first uint64      // seq of rs[0], set when written
}

type result struct {
	first uint64 // seq of rs[0]; the rest follow consecutively
	err   error
}

// group is what one pass of the committer wrote to the log. It becomes
// visible, and its waiters are answered, once a sync covers it.
type group struct {
	reqs []*request
	rs   []Reading
	at   time.Time
}

// committer is the store's single writer. It takes everything queued,
// gives it sequence numbers, writes it to the log in one write and hands
// the fdatasync to the syncer goroutine; while that sync runs, the next
// requests gather and are written, so the next sync covers every caller
// that arrived meanwhile. When a sync ends, its readings enter the head and
// its waiters are answered, then the live stream (OnCommit) is told.
//
// A sync starts as soon as the previous one ended if anyone waits (or
// SyncWindow after the previous one started); readings nobody waits for
// wait up to CommitInterval so that they share syncs.
type committer struct {
	s   *Store
	log *wal.Log

	gate   sync.RWMutex // senders hold it shared; close takes it to stop them
	closed bool
	reqs   chan *request
	quit   chan struct{}
	done   chan struct{}

	syncReq  chan struct{}
	syncDone chan error
	notify   chan commitNote
	notified chan struct{}

	// Owned by the run goroutine.
	nextSeq   uint64
	written   []*group   // in the log, not yet covered by a sync
	inSync    []*group   // covered by the sync in flight
	syncing   bool       // a sync is in flight
	syncStart time.Time  // when the last sync started
	pings     []*request // answered when the next sync ends
	carry     []Reading  // queued readings whose write failed, retried next
	retryAt   time.Time  // when carry may be retried
	backoff   time.Duration

	drops dropCounter // dropped readings not yet persisted

	commits      atomic.Uint64
	committed    atomic.Uint64
	lastCommitNs atomic.Int64
	errMu        sync.Mutex
	lastErr      error
	failingSince time.Time
}

// commitNote is one synced group of readings for OnCommit.
type commitNote struct {
	rs   []Reading
	took time.Duration
}

func newCommitter(s *Store, log *wal.Log, nextSeq uint64) *committer {
	c := &committer{
		s: s, log: log, nextSeq: nextSeq,
		reqs:     make(chan *request, s.opts.QueueSize),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		syncReq:  make(chan struct{}),
		syncDone: make(chan error, 1),
		notify:   make(chan commitNote, 64),
		notified: make(chan struct{}),
	}
	c.drops.init()
	go c.syncer()
	go c.notifier()
	go c.run()
	return c
}

// Append stores rs and returns once the log record holding them is on disk
// (fdatasync'd). On success it sets each reading's Seq; the readings of one
// call get consecutive sequence numbers. If it fails or ctx ends first the
// readings are not acknowledged, though some or all may still be stored: a
// caller must treat that as "not acknowledged" and may send them again.
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

// Enqueue queues rs for the next sync and returns without waiting for it:
// at most CommitInterval of queued readings is lost in a power cut (a
// crash of the process alone loses nothing written). It blocks only while
// the queue is full (back-pressure), until ctx ends.
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

// Ping returns once the committer has answered a request, after the sync
// in flight (if any) ended: a liveness probe for the watchdog. It fails
// when ctx ends first — the committer is wedged (a hung disk, a stuck
// fsync) or the queue is full — when writes are failing, and with an error
// wrapping ErrClosed once the store file was closed by a failure (a
// compaction that could not reopen it): only a restart helps then.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.broken.Load(); err != nil {
		return *err
	}
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

// syncer runs the log's fdatasyncs, one at a time, off the committer's
// goroutine.
func (c *committer) syncer() {
	for range c.syncReq {
		c.syncDone <- c.log.Sync()
	}
}

// notifier calls OnCommit off the committer's goroutine, in commit order.
func (c *committer) notifier() {
	defer close(c.notified)
	for n := range c.notify {
		c.s.opts.OnCommit(n.rs, n.took)
	}
}

func (c *committer) run() {
	defer close(c.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		c.maybeSync(false)
		reqs := c.reqs
		if c.backlogged() {
			reqs = nil // the disk is behind: let the queue push back
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if d, ok := c.nextWake(); ok {
			timer.Reset(d)
		}
		select {
		case r := <-reqs:
			c.write(c.gather([]*request{r}))
		case err := <-c.syncDone:
			c.synced(err)
		case <-timer.C:
			if len(c.carry) > 0 && !c.s.opts.Now().Before(c.retryAt) {
				c.write(nil)
			}
		case <-c.quit:
			c.final()
			return
		}
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

func count(batch []*request) int {
	n := 0
	for _, r := range batch {
		n += len(r.rs)
	}
	return n
}

// backlogged reports whether so much is written and not yet synced that
// the committer should stop taking requests until the disk catches up.
func (c *committer) backlogged() bool {
	n := 0
	for _, g := range c.written {
		n += len(g.rs)
	}
	return n >= 4*c.s.opts.MaxBatch
}

// syncDue reports whether the written groups should be synced now.
func (c *committer) syncDue(now time.Time) bool {
	if len(c.written) == 0 && len(c.pings) == 0 {
		return false
	}
	if w := c.s.opts.SyncWindow; w > 0 && now.Before(c.syncStart.Add(w)) {
		return false
	}
	return c.waited() || !now.Before(c.written[0].at.Add(c.s.opts.CommitInterval))
}

// waited reports whether a caller waits for the written groups.
func (c *committer) waited() bool {
	if len(c.pings) > 0 {
		return true
	}
	for _, g := range c.written {
		for _, r := range g.reqs {
			if r.done != nil {
				return true
			}
		}
	}
	return false
}

// nextWake is how long until a timed event: a sync window or commit
// interval ending, or the retry of carried readings.
func (c *committer) nextWake() (time.Duration, bool) {
	now := c.s.opts.Now()
	var at time.Time
	if !c.syncing && (len(c.written) > 0 || len(c.pings) > 0) {
		at = c.syncStart.Add(c.s.opts.SyncWindow)
		if !c.waited() {
			at = later(at, c.written[0].at.Add(c.s.opts.CommitInterval))
		}
	}
	if len(c.carry) > 0 && (at.IsZero() || c.retryAt.Before(at)) {
		at = c.retryAt
	}
	if at.IsZero() {
		return 0, false
	}
	return max(at.Sub(now), 0), true
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// maybeSync starts a sync of everything written if one is due (or force)
// and none is in flight.
func (c *committer) maybeSync(force bool) {
	now := c.s.opts.Now()
	if c.syncing || (!force && !c.syncDue(now)) || (len(c.written) == 0 && len(c.pings) == 0) {
		return
	}
	if len(c.written) == 0 { // only pings: nothing to sync
		c.answerPings(c.err())
		return
	}
	c.inSync, c.written = c.written, nil
	c.syncing, c.syncStart = true, now
	c.syncReq <- struct{}{}
}

func (c *committer) answerPings(err error) {
	for _, p := range c.pings {
		p.done <- result{err: err}
	}
	c.pings = nil
}
