package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"fieldgate/store/wal"
)

// request is one Append, AppendThen, Enqueue or Ping waiting for a commit.
type request struct {
	rs     []Reading
	ch     chan signal // the waiting caller's (Append, Ping); nil if nobody waits
	done   func(error) // AppendThen's: called by the leader once done
	flush  func()      // AppendThen's: called once the commit told all its requests
	noLead bool        // AppendThen's caller leaves the commit to the flusher
	at     time.Time   // when it was queued
	first  uint64      // seq of rs[0], set when written

	// Under committer.mu:
	abandoned bool // the caller gave up waiting (its context ended)
	handed    bool // it was told to lead

	one [1]Reading // rs's array when it holds one reading: one allocation, not two
}

// waits says whether someone is told the request's result: its caller
// waits (Append, Ping) or gave a callback (AppendThen). The others
// (Enqueue) ride along; their readings are carried or dropped on failure.
func (r *request) waits() bool { return r.ch != nil || r.done != nil }

// flush calls the flush of each of reqs that has one: the commit that
// held them told every one its result.
func flush(reqs []*request) {
	for _, r := range reqs {
		if r.flush != nil {
			r.flush()
		}
	}
}

// reply tells whoever waits the request's result.
func (r *request) reply(res result) {
	switch {
	case r.ch != nil:
		r.ch <- signal{res: res}
	case r.done != nil:
		r.done(res.err)
	}
}

// signal tells a waiting caller that its request is done, or that it is
// the next leader.
type signal struct {
	lead bool
	res  result
}

type result struct {
	first uint64 // seq of rs[0]; the rest follow consecutively
	err   error
}

// committer writes readings to the log as group commits, leader and
// followers (as LevelDB's writers do). Callers queue their requests; the
// first caller that waits while no commit runs becomes the leader: it takes
// everything queued, gives it sequence numbers, writes it to the log in one
// write and fdatasyncs it on its own goroutine — so a lone client pays no
// hand-off between goroutines. Its readings enter the head, every waiter of
// the group is answered, and the leadership passes to the first caller that
// queued meanwhile, which commits everything that gathered during the sync:
// a commit holds every client that waited, not half of them.
//
// Readings nobody waits for (Enqueue: sensor polls, QoS 0) ride along with
// the next commit, or the flusher goroutine commits them once the oldest has
// waited CommitInterval. A commit waits SyncWindow after the previous one
// began (0: not at all).
type committer struct {
	s   *Store
	log *wal.Log

	slots chan struct{} // one per queued request: back-pressure at QueueSize

	mu      sync.Mutex
	idle    *sync.Cond // signalled when leading ends
	closed  bool
	queue   []*request
	waiters int  // requests in queue whose caller waits
	leading bool // a leader is committing
	// gatherAt, while a leader gathers, is how many waiters it waits for;
	// send wakes it through gathered.
	gatherAt  int
	gathered  chan struct{}
	gatherMax time.Duration // the longest a leader gathers (the constant; tests lengthen it)

	// Owned by the leader of the moment.
	nextSeq   uint64
	syncStart time.Time
	syncTook  time.Duration // how long the last sync took
	answered  int           // waiters the last commit answered
	behind    int           // waiters queued when it answered them (under mu)
	carry     []Reading     // queued readings whose write failed, retried next
	retryAt   time.Time     // when carry (or a broken log's recovery) may be retried
	backoff   time.Duration
	logBroken bool   // a write or sync failed: Recover before the next commit
	record    []byte // the log record being encoded, kept for the next commit

	kick chan struct{} // wakes the flusher
	quit chan struct{}
	done chan struct{}

	// Commits waiting for OnCommit. The notifier takes them in bursts, so
	// that a commit costs the leader no goroutine wake-up (which on a busy
	// machine delays its own acknowledgement).
	noteMu   sync.Mutex
	notes    []commitNote
	noteRoom *sync.Cond    // signalled when the notifier took the notes
	noteKick chan struct{} // wakes the notifier
	notified chan struct{}

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
		s: s, log: log, nextSeq: nextSeq, gatherMax: gatherMax,
		slots:    make(chan struct{}, s.opts.QueueSize),
		kick:     make(chan struct{}, 1),
		gathered: make(chan struct{}, 1),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		noteKick: make(chan struct{}, 1),
		notified: make(chan struct{}),
	}
	c.idle = sync.NewCond(&c.mu)
	c.noteRoom = sync.NewCond(&c.noteMu)
	c.drops.init()
	go c.notifier()
	go c.flusher()
	return c
}

// send queues req, blocking while the queue is full until ctx ends, and
// reports whether the caller must lead: it waits and no commit runs.
func (c *committer) send(ctx context.Context, req *request) (lead bool, err error) {
	select {
	case c.slots <- struct{}{}:
	default: // full: only now is ctx consulted (its Done channel costs an allocation)
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			return false, fmt.Errorf("store: commit queue full: %w", ctx.Err())
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		<-c.slots
		return false, ErrClosed
	}
	if err := c.s.broken.Load(); err != nil {
		<-c.slots
		return false, *err
	}
	req.at = c.s.opts.Now()
	c.queue = append(c.queue, req)
	if req.waits() {
		c.waiters++
		if c.gatherAt > 0 && c.waiters >= c.gatherAt {
			c.gatherAt = 0
			c.gathered <- struct{}{}
		}
		if !c.leading && !req.noLead {
			c.leading, req.handed = true, true
			return true, nil
		}
	}
	if !c.leading && (req.noLead || (!req.waits() && (len(c.queue) == 1 || c.queueFull()))) {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	return false, nil
}

// queueFull reports whether enough is queued to commit without waiting out
// CommitInterval: a full batch, or half the queue's slots (so that a flood
// of QoS 0 publishes is written in big groups instead of stalling on the
// back-pressure). c.mu is held.
func (c *committer) queueFull() bool {
	return len(c.queue) >= cap(c.slots)/2 || count(c.queue) >= c.s.opts.MaxBatch
}

// wait queues req and returns its result, leading commits when its turn
// comes. If ctx ends first it returns ctx's error; the request may still
// be committed.
func (c *committer) wait(ctx context.Context, req *request) (result, error) {
	lead, err := c.send(ctx, req)
	if err != nil {
		return result{}, err
	}
	if lead {
		c.lead()
	}
	done := ctx.Done()
	for {
		select {
		case sig := <-req.ch:
			if !sig.lead {
				return sig.res, nil
			}
			c.lead()
		case <-done:
			if c.abandon(req) {
				return result{}, ctx.Err()
			}
			done = nil // it was told to lead before it gave up: it must, then take its result
		}
	}
}

// abandon marks req as given up, unless it was already told to lead.
func (c *committer) abandon(req *request) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if req.handed {
		return false
	}
	req.abandoned = true
	return true
}

// gatherMax bounds how long a leader waits for the clients the last
// commit answered (see gather): a Pi's SD card syncs slower than this, so
// there the wait is gatherMax; a fast disk waits at most its last sync.
const gatherMax = 2 * time.Millisecond

// noteBurst is how long the notifier lets commits gather before it passes
// them to OnCommit: the live stream's added latency. maxNotes bounds what
// may wait; a leader that finds that many waits for the notifier.
const (
	noteBurst = 50 * time.Millisecond
	maxNotes  = 4096
)

// note queues a commit for OnCommit and wakes the notifier if it sleeps.
func (c *committer) note(n commitNote) {
	c.noteMu.Lock()
	for len(c.notes) >= maxNotes {
		c.noteRoom.Wait()
	}
	c.notes = append(c.notes, n)
	first := len(c.notes) == 1
	c.noteMu.Unlock()
	if first {
		select {
		case c.noteKick <- struct{}{}:
		default:
		}
	}
}

// notifier calls OnCommit off the leaders' goroutines, in commit order, in
// bursts: woken by the first commit after a quiet spell, it waits noteBurst
// for more, then passes them all on. It ends when the flusher closed
// noteKick, after passing on what is left.
func (c *committer) notifier() {
	defer close(c.notified)
	for {
		_, open := <-c.noteKick
		if open {
			time.Sleep(noteBurst)
		}
		c.noteMu.Lock()
		notes := c.notes
		c.notes = nil
		c.noteRoom.Broadcast()
		c.noteMu.Unlock()
		for _, n := range notes {
			c.s.opts.OnCommit(n.rs, n.took)
		}
		if !open {
			return
		}
	}
}

// flusher commits queued readings nobody waits for once the oldest has
// waited CommitInterval (or the queue is half full, or carried readings are
// due for a retry), and drains the queue at close.
func (c *committer) flusher() {
	defer close(c.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-c.kick:
		case <-timer.C:
		case <-c.quit:
			c.final()
			return
		}
		c.mu.Lock()
		due, wait := c.flushDue()
		if due {
			c.leading = true
		}
		c.mu.Unlock()
		if due {
			c.lead()
			continue
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if wait > 0 {
			timer.Reset(wait)
		}
	}
}

// flushDue reports whether the flusher should lead a commit now, or else
// how long until it should look again (0: nothing to wait for). c.mu is held.
func (c *committer) flushDue() (bool, time.Duration) {
	if c.leading {
		return false, 0 // the leader will hand over or kick again
	}
	now := c.s.opts.Now()
	var at time.Time
	if len(c.queue) > 0 {
		if c.waiters > 0 || c.queueFull() { // a waiter nobody leads for: AppendThen's
			return true, 0
		}
		at = c.queue[0].at.Add(c.s.opts.CommitInterval)
	}
	// Carried readings, and a broken log (whose recovery an idle gateway
	// needs as much as a busy one), are retried after their backoff.
	if (len(c.carry) > 0 || c.logBroken) && (at.IsZero() || c.retryAt.Before(at)) {
		at = c.retryAt
	}
	if at.IsZero() {
		return false, 0
	}
	if !now.Before(at) {
		return true, 0
	}
	return false, at.Sub(now)
}

func count(reqs []*request) int {
	n := 0
	for _, r := range reqs {
		n += len(r.rs)
	}
	return n
}
