package store

import (
	"context"
	"fmt"
)

// The ways in: Append waits for its readings to be on disk, AppendThen
// calls back when they are, Enqueue does not wait (see the committer for
// how they are committed together).

// Lead says who commits the readings AppendThen queues.
type Lead bool

const (
	// LeadIfIdle: a caller that finds no commit running commits on its
	// own goroutine before AppendThen returns, as Append does: a lone
	// client pays no hand-off.
	LeadIfIdle Lead = true
	// FlusherCommits: the flusher commits at once and the caller goes on
	// (a connection with more publishes already received reads them while
	// the sync runs, and they share the next).
	FlusherCommits Lead = false
)

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
	res, err := s.c.wait(ctx, req)
	if err != nil {
		return fmt.Errorf("store: append %d readings: %w", len(rs), err)
	}
	if res.err != nil {
		return res.err
	}
	for i := range rs {
		rs[i].Seq = res.first + uint64(i)
	}
	return nil
}

// AppendThen stores rs like Append, but without waiting: done is called
// once the log record holding them is on disk (fdatasync'd), with nil, or
// with the error that kept them from it, exactly once. Calls are committed
// in the order they were made, so the dones of one caller come in that
// order too. Then flush, unless nil, is called once the commit has called
// the done of every request it held: a caller that answers many requests
// at once does so there (a connection's PUBACKs, in one write however
// many of its publishes one sync held). done and flush run on the
// goroutine of the commit and must not block.
//
// lead says who commits (see Lead). If AppendThen returns an error —
// invalid readings, the queue full until ctx ended, a closed store — the
// readings were not queued and neither done nor flush is ever called.
func (s *Store) AppendThen(ctx context.Context, rs []Reading, lead Lead, done func(error), flush func()) error {
	req, err := newRequest(rs, false)
	if err != nil {
		return err
	}
	req.done, req.flush, req.noLead = done, flush, lead == FlusherCommits
	mustLead, err := s.c.send(ctx, req)
	if err != nil {
		return fmt.Errorf("store: append %d readings: %w", len(rs), err)
	}
	if mustLead {
		s.c.lead()
	}
	return nil
}

// Enqueue queues rs for the next commit and returns without waiting for it:
// at most CommitInterval of queued readings is lost in a power cut. It
// blocks only while the queue is full (back-pressure), until ctx ends.
func (s *Store) Enqueue(ctx context.Context, rs ...Reading) error {
	if len(rs) == 0 {
		return nil
	}
	req, err := newRequest(rs, false)
	if err != nil {
		return err
	}
	_, err = s.c.send(ctx, req)
	return err
}

// Ping returns once the committer has answered a request queued behind the
// commit in flight (if any): a liveness probe for the watchdog. It fails
// when ctx ends first — a commit is wedged (a hung disk, a stuck fsync) or
// the queue is full — and when writes are failing: with an error wrapping
// ErrLogBroken while a failed sync is being recovered (a Ping also drives
// that recovery), with one wrapping ErrFailed once only a restart helps,
// and with the write error otherwise (a full disk).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.broken.Load(); err != nil {
		return *err
	}
	res, err := s.c.wait(ctx, &request{ch: make(chan signal, 1)})
	if err != nil {
		return fmt.Errorf("store: committer did not answer: %w", err)
	}
	return res.err
}

// newRequest validates rs and copies them, so that the caller may reuse its
// slice as soon as Append or Enqueue returns, whatever happened.
func newRequest(rs []Reading, wait bool) (*request, error) {
	for i := range rs {
		if err := rs[i].Validate(); err != nil {
			return nil, fmt.Errorf("reading %d of %d: %w", i+1, len(rs), err)
		}
	}
	req := &request{}
	if len(rs) == 1 {
		req.rs = req.one[:]
	} else {
		req.rs = make([]Reading, len(rs))
	}
	for i, r := range rs {
		r.Time = r.Time.UTC()
		req.rs[i] = r
	}
	if wait {
		req.ch = make(chan signal, 1)
	}
	return req, nil
}
