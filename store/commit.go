package store

import (
	"errors"
	"fmt"
	"time"

	"fieldgate/store/wal"
)

// ErrBehind is returned by Append while checkpoints fail (a full disk) or
// fall behind, and the head has reached its hard bound (twice its bounds):
// nothing more is accepted until a checkpoint succeeds.
var ErrBehind = errors.New("store: the in-memory head is full: checkpoints fail or fall behind")

// lead commits as the leader: it waits out the sync window, lets the
// clients answered by the last commit come back (see gather), takes what is
// queued (up to MaxBatch readings), commits it, then hands the leadership
// to the first caller still waiting in the queue, or gives it up.
func (c *committer) lead() {
	if w := c.s.opts.SyncWindow; w > 0 {
		if d := c.syncStart.Add(w).Sub(c.s.opts.Now()); d > 0 {
			time.Sleep(d)
		}
	}
	c.mu.Lock()
	c.gather()
	n, k := 0, 0
	for k < len(c.queue) && (k == 0 || n+len(c.queue[k].rs) <= c.s.opts.MaxBatch) {
		n += len(c.queue[k].rs)
		if c.queue[k].waits() {
			c.waiters--
		}
		k++
	}
	batch := c.queue[:k:k]
	c.queue = c.queue[k:]
	c.mu.Unlock()
	for range batch {
		<-c.slots
	}
	c.commit(batch)

	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.queue {
		if r.ch != nil && !r.abandoned {
			r.handed = true
			r.ch <- signal{lead: true}
			return
		}
	}
	c.leading = false
	c.idle.Broadcast()
	if len(c.queue) > 0 || len(c.carry) > 0 || c.logBroken {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// gather merges cohorts of clients before a commit. Clients in a closed
// loop (an ESP32 sends its next reading once the last is acknowledged)
// split into two cohorts that take turns: those answered by commit N come
// back while commit N+1 syncs the others, so each sync holds half of them
// and each client waits for two syncs. When the last commit answered
// several waiters, the leader waits — up to the last sync's duration — for
// them to come back and joins them to the group: every client once per
// sync. It waits for as many waiters as were queued behind that commit
// when it answered, plus those it answered; a client that came back before
// the leader started counts, whoever the leader is. A lone client never
// waits. c.mu is held; it is released while waiting.
func (c *committer) gather() {
	if c.answered < 2 {
		return
	}
	want := c.behind + c.answered
	if c.waiters >= want {
		return
	}
	timer := time.NewTimer(min(c.syncTook, c.gatherMax))
	defer timer.Stop()
	c.gatherAt = want
	c.mu.Unlock()
	select {
	case <-c.gathered:
	case <-timer.C:
	}
	c.mu.Lock()
	if c.gatherAt == 0 { // send signalled after the timer fired
		select {
		case <-c.gathered:
		default:
		}
	}
	c.gatherAt = 0
}

// commit writes batch (after any carried readings) to the log and syncs
// it; its readings enter the head, then its waiters are answered, then
// OnCommit hears of them.
func (c *committer) commit(batch []*request) {
	var reqs, pings []*request
	for _, r := range batch {
		if len(r.rs) == 0 {
			pings = append(pings, r)
		} else {
			reqs = append(reqs, r)
		}
	}
	if len(reqs) == 0 && len(c.carry) == 0 {
		err := c.recover() // an idle gateway recovers when the watchdog asks
		if err == nil {
			err = c.err()
		}
		c.answer(pings, result{err: err})
		return
	}
	if len(c.carry) > 0 {
		reqs = append([]*request{{rs: c.carry}}, reqs...)
		c.carry = nil
	}
	if err := c.recover(); err != nil {
		c.answer(reqs, result{err: err})
		c.answer(pings, result{err: err})
		c.carryQueued(reqs)
		return
	}
	if err := c.s.admit(count(reqs)); err != nil {
		c.refuse(reqs, err)
		c.answer(pings, result{err: err})
		return
	}
	seq := c.nextSeq
	rs := make([]Reading, 0, count(reqs))
	for _, r := range reqs {
		r.first = seq
		for i := range r.rs {
			r.rs[i].Seq = seq + uint64(i)
		}
		if err := c.append(r.rs); err != nil { // a reading larger than a segment: not a valid one
			c.log.Discard()
			c.fail(reqs, err)
			c.answer(pings, result{err: err})
			return
		}
		seq += uint64(len(r.rs))
		rs = append(rs, r.rs...)
	}
	c.syncStart = c.s.opts.Now()
	if err := c.log.Flush(); err != nil {
		err = fmt.Errorf("store: write %d readings to the log: %w", len(rs), err)
		if errors.Is(err, wal.ErrBroken) {
			c.nextSeq = seq // part of it may have reached the file: its seqs are never given again
			c.broke(reqs, pings, err)
			return
		}
		c.log.Discard() // refused before any byte was written (no room for a segment): the seqs are free again
		c.fail(reqs, err)
		c.answer(pings, result{err: err})
		return
	}
	c.nextSeq = seq
	if err := c.log.Sync(); err != nil {
		c.broke(reqs, pings, fmt.Errorf("store: sync the log: %w", err))
		return
	}
	took := c.s.opts.Now().Sub(c.syncStart)
	c.s.head.insert(rs, c.s.opts.Now(), c.s.repairable)
	c.s.lastSeq.Store(seq - 1)
	c.s.count.Add(int64(len(rs)))
	c.commits.Add(1)
	c.committed.Add(uint64(len(rs)))
	c.lastCommitNs.Store(c.s.opts.Now().UnixNano())
	c.setErr(nil)
	c.backoff = 0
	c.mu.Lock()
	c.behind = c.waiters // before any answered client can come back
	c.mu.Unlock()
	for _, r := range reqs {
		r.reply(result{first: r.first})
	}
	c.answer(pings, result{})
	flush(reqs)
	c.answered = 0
	for _, r := range reqs {
		if r.waits() {
			c.answered++
		}
	}
	c.syncTook = took
	if c.s.opts.OnCommit != nil {
		c.note(commitNote{rs: rs, took: took})
	}
	c.s.headGrew()
}

// append adds rs to the log's buffer, split into records that fit a
// segment comfortably. Each record is encoded into c.record, which the log
// copies: a commit of the usual size allocates nothing for it.
func (c *committer) append(rs []Reading) error {
	limit := int(c.s.logOpts.SegmentSize / 4)
	for start := 0; start < len(rs); {
		end, size := start, 1
		for end < len(rs) && (end == start || size+logRecordSize(&rs[end]) <= limit) {
			size += logRecordSize(&rs[end])
			end++
		}
		if cap(c.record) < size {
			c.record = make([]byte, 0, size)
		}
		c.record = encodeLogRecord(c.record[:0], rs[start:end])
		if err := c.log.Append(rs[start].Seq, rs[end-1].Seq, c.record); err != nil {
			return err
		}
		start = end
	}
	if cap(c.record) > keptRecord {
		c.record = nil // a burst's record is not kept for ever
	}
	return nil
}

// keptRecord is the largest record buffer a commit leaves for the next.
const keptRecord = 64 << 10

// answer sends res to the waiters among reqs, then calls their flushes.
func (c *committer) answer(reqs []*request, res result) {
	for _, r := range reqs {
		r.reply(res)
	}
	flush(reqs)
}

// refuse answers the waiters of a batch the store will not take (reject_new
// on a full store, or the head at its bound) and drops or carries the
// queued readings.
func (c *committer) refuse(reqs []*request, err error) {
	c.answer(reqs, result{err: err})
	if errors.Is(err, ErrFull) {
		c.drops.add(reasonFullRejectNew, uint64(queuedCount(reqs)))
		return
	}
	c.setErr(err)
	c.keepQueued(reqs)
}

// fail handles a commit that did not happen (a write refused before any
// byte reached the file, or a log still broken). Waiters learn the error;
// queued readings are carried and retried after a backoff.
func (c *committer) fail(reqs []*request, err error) {
	c.setErr(err)
	c.answer(reqs, result{err: err})
	c.keepQueued(reqs)
}

// broke handles a write or sync that failed and broke the log (see
// wal.ErrBroken): nothing of this commit is acknowledged — waiters learn
// the error — and its queued readings are carried, to be written again
// under new seqs once the log is recovered (Recover voids these).
func (c *committer) broke(reqs, pings []*request, err error) {
	c.logBroken = true
	err = fmt.Errorf("%w: %w", ErrLogBroken, err)
	c.s.log.Error("store: the log failed a write or sync; nothing of that commit is acknowledged, and the log is recovered from what is on disk before the next", "err", err)
	c.fail(reqs, err)
	c.answer(pings, result{err: err})
}

// recover makes a broken log writable again (wal.Log.Recover), at most
// once per backoff; while it cannot, it returns an error wrapping
// ErrLogBroken. If what the log synced no longer reads back, the store
// fails: only a restart, and the replay that reports the damage, helps.
func (c *committer) recover() error {
	if !c.logBroken {
		return nil
	}
	if c.s.opts.Now().Before(c.retryAt) {
		return c.err()
	}
	err := c.log.Recover()
	if err == nil {
		c.logBroken = false
		c.setErr(nil)
		c.s.log.Warn("store: the log recovered from the failed write or sync; writes go on")
		return nil
	}
	err = fmt.Errorf("%w: recover: %w", ErrLogBroken, err)
	if errors.Is(err, wal.ErrLost) {
		c.s.failStore(err)
	}
	c.setErr(err)
	c.backOff()
	return err
}

func queuedCount(reqs []*request) int {
	n := 0
	for _, r := range reqs {
		if !r.waits() {
			n += len(r.rs)
		}
	}
	return n
}

// keepQueued carries the queued readings of reqs (see carryQueued) and
// backs off before the next try.
func (c *committer) keepQueued(reqs []*request) {
	c.carryQueued(reqs)
	c.backOff()
}

// carryQueued moves the queued readings of reqs into carry, so that a full
// disk (or a broken log) costs no sensor data until carry overflows; then
// the oldest are dropped and counted.
func (c *committer) carryQueued(reqs []*request) {
	for _, r := range reqs {
		if !r.waits() {
			c.carry = append(c.carry, r.rs...)
		}
	}
	if over := len(c.carry) - c.s.opts.CarryLimit; over > 0 {
		c.drops.add(reasonCommitFailed, uint64(over))
		c.carry = append(c.carry[:0:0], c.carry[over:]...)
	}
}

// backOff doubles the wait before the next retry of carried readings (or
// of a broken log's recovery), from 100 ms up to 5 s.
func (c *committer) backOff() {
	c.backoff = min(max(2*c.backoff, 100*time.Millisecond), 5*time.Second)
	c.retryAt = c.s.opts.Now().Add(c.backoff)
}

// final runs in the flusher once close has stopped new requests: it waits
// for the leader of the moment, then commits what is queued, and retries
// carried readings once. If that fails too, close reports the loss.
func (c *committer) final() {
	c.mu.Lock()
	retried := false
	for {
		for c.leading {
			c.idle.Wait()
		}
		if len(c.queue) == 0 {
			if len(c.carry) == 0 || retried {
				break
			}
			retried = true
		}
		c.leading = true
		c.mu.Unlock()
		c.lead()
		c.mu.Lock()
	}
	c.mu.Unlock()
	close(c.noteKick)
	<-c.notified
}

func (c *committer) setErr(err error) {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	switch {
	case err == nil:
		c.lastErr, c.failingSince = nil, time.Time{}
	case c.lastErr == nil:
		c.lastErr, c.failingSince = err, c.s.opts.Now()
		c.s.log.Error("store: writes failing", "err", err)
	default:
		c.lastErr = err
	}
}

func (c *committer) err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.lastErr
}

// close stops new requests, commits what is queued and waits for the
// flusher and the notifier.
func (c *committer) close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	close(c.quit)
	<-c.done
	if len(c.carry) > 0 {
		return fmt.Errorf("store: %d queued readings lost at shutdown: %w", len(c.carry), c.err())
	}
	return nil
}
