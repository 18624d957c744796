package store

import (
	"errors"
	"fmt"
	"time"
)

// ErrBehind is returned by Append while checkpoints fail (a full disk)
// and the head has reached its hard bound: nothing more is accepted until
// a checkpoint succeeds.
var ErrBehind = errors.New("store: checkpoints are failing and the in-memory head is full")

// write gives the readings of batch (after any carried ones) sequence
// numbers and writes them to the log. Waiters are answered when the sync
// covering them ends; if the write fails they are answered now.
func (c *committer) write(batch []*request) {
	now := c.s.opts.Now()
	var reqs []*request
	for _, r := range batch {
		if len(r.rs) == 0 {
			c.pings = append(c.pings, r)
			continue
		}
		reqs = append(reqs, r)
	}
	if len(reqs) == 0 && len(c.carry) == 0 {
		return
	}
	n := len(c.carry)
	for _, r := range reqs {
		n += len(r.rs)
	}
	if err := c.s.admit(n); err != nil {
		c.refuse(reqs, err)
		return
	}
	if len(c.carry) > 0 {
		reqs = append([]*request{{rs: c.carry}}, reqs...)
	}
	seq := c.nextSeq
	var rs []Reading
	for _, r := range reqs {
		r.first = seq
		for i := range r.rs {
			r.rs[i].Seq = seq + uint64(i)
		}
		if err := c.append(r.rs); err != nil {
			c.log.Discard()
			c.fail(reqs, err)
			return
		}
		seq += uint64(len(r.rs))
		rs = append(rs, r.rs...)
	}
	if err := c.log.Flush(); err != nil {
		c.log.Discard()
		c.fail(reqs, fmt.Errorf("store: write %d readings to the log: %w", len(rs), err))
		return
	}
	c.nextSeq = seq
	c.carry, c.backoff = nil, 0
	c.written = append(c.written, &group{reqs: reqs, rs: rs, at: now})
}

// append adds rs to the log's buffer, split into records that fit a
// segment comfortably.
func (c *committer) append(rs []Reading) error {
	limit := int(c.s.logOpts.SegmentSize / 4)
	var buf []byte
	for start := 0; start < len(rs); {
		end, size := start, 1
		for end < len(rs) && (end == start || size+logRecordSize(&rs[end]) <= limit) {
			size += logRecordSize(&rs[end])
			end++
		}
		buf = encodeLogRecord(buf[:0], rs[start:end])
		if err := c.log.Append(rs[start].Seq, rs[end-1].Seq, buf); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// refuse answers the waiters of a batch the store will not take (reject_new
// on a full store, or the head at its bound) and drops or carries the
// queued readings.
func (c *committer) refuse(reqs []*request, err error) {
	queued := 0
	for _, r := range reqs {
		if r.done != nil {
			r.done <- result{err: err}
		} else {
			queued += len(r.rs)
		}
	}
	if errors.Is(err, ErrFull) {
		c.drops.add(reasonFullRejectNew, uint64(queued+len(c.carry)))
		c.carry = nil
		return
	}
	c.setErr(err)
	c.keepQueued(reqs)
}

// fail handles a failed write: nothing of it reached the log's file (see
// wal.Log.Flush), so the sequence numbers are free again. Waiters learn
// the error; queued readings are carried and retried after a backoff.
func (c *committer) fail(reqs []*request, err error) {
	c.setErr(err)
	for _, r := range reqs {
		if r.done != nil {
			r.done <- result{err: err}
		}
	}
	c.carry = nil
	c.keepQueued(reqs)
}

// keepQueued moves the queued readings of reqs into carry, so that a full
// disk costs no sensor data until carry overflows; then the oldest are
// dropped and counted.
func (c *committer) keepQueued(reqs []*request) {
	for _, r := range reqs {
		if r.done == nil {
			c.carry = append(c.carry, r.rs...)
		}
	}
	if over := len(c.carry) - c.s.opts.CarryLimit; over > 0 {
		c.drops.add(reasonCommitFailed, uint64(over))
		c.carry = append(c.carry[:0:0], c.carry[over:]...)
	}
	c.backoff = min(max(2*c.backoff, 100*time.Millisecond), 5*time.Second)
	c.retryAt = c.s.opts.Now().Add(c.backoff)
}

// synced ends a sync: on success its readings enter the head and become
// durable for every reader, then its waiters are answered, then OnCommit
// hears of them. A failed sync breaks the log (wal.Log.Sync): waiters learn
// it and the queued readings it held are counted as dropped.
func (c *committer) synced(err error) {
	groups := c.inSync
	c.inSync, c.syncing = nil, false
	took := c.s.opts.Now().Sub(c.syncStart)
	if err != nil {
		err = fmt.Errorf("store: sync the log: %w", err)
		c.setErr(err)
		for _, g := range groups {
			for _, r := range g.reqs {
				if r.done != nil {
					r.done <- result{err: err}
				} else {
					c.drops.add(reasonCommitFailed, uint64(len(r.rs)))
				}
			}
		}
		c.answerPings(err)
		return
	}
	var rs []Reading
	for _, g := range groups {
		rs = append(rs, g.rs...)
	}
	c.s.head.insert(rs, c.s.opts.Now(), c.s.repairable)
	c.s.lastSeq.Store(rs[len(rs)-1].Seq)
	c.s.count.Add(int64(len(rs)))
	c.commits.Add(1)
	c.committed.Add(uint64(len(rs)))
	c.lastCommitNs.Store(c.s.opts.Now().UnixNano())
	c.setErr(nil)
	for _, g := range groups {
		for _, r := range g.reqs {
			if r.done != nil {
				r.done <- result{first: r.first}
			}
		}
	}
	c.answerPings(nil)
	if c.s.opts.OnCommit != nil {
		c.notify <- commitNote{rs: rs, took: took}
	}
	c.s.headGrew()
}

// final runs once close has stopped new sends: it writes and syncs
// everything queued, then stops the syncer and the notifier. If a write
// fails it stops writing, syncs what was written and gives up on the rest
// (close reports how many readings that lost).
func (c *committer) final() {
	failed := false
	for {
		if c.syncing {
			c.synced(<-c.syncDone)
			continue
		}
		if !failed {
			if batch := c.gather(nil); len(batch) > 0 || len(c.carry) > 0 {
				c.write(batch)
				failed = len(c.carry) > 0
				continue
			}
		}
		if len(c.written) > 0 || len(c.pings) > 0 {
			c.maybeSync(true)
			continue
		}
		break
	}
	for {
		select {
		case r := <-c.reqs:
			if r.done != nil {
				r.done <- result{err: ErrClosed}
			} else {
				c.carry = append(c.carry, r.rs...)
			}
			continue
		default:
		}
		break
	}
	close(c.syncReq)
	close(c.notify)
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

// close stops new sends, writes and syncs what is queued and waits for the
// goroutines.
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
