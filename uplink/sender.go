package uplink

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"fieldgate/store"

	"golang.org/x/time/rate"
)

// job is one batch to send: recorded in the store before its first send.
type job struct {
	first, last uint64
	deadLetter  bool   // a retry of a dead letter
	inProgress  int    // 409s answered to it so far (see maxInProgress)
	timeouts    int    // timeouts on an open connection so far (see maxTimeouts)
	body        []byte // gzip'd JSON, built on first send and reused
	raw, count  int    // uncompressed size and readings, for stats
}

// Sender replays the store's outbox to the cloud. Run it once.
type Sender struct {
	o     Options
	st    Store
	gw    string
	inc   string // the store's incarnation
	state *tracker

	// Owned by Run's goroutine.
	resend      []*job // recorded batches to (re)send, first in line
	liveNext    uint64 // next seq for the live lane
	backlogNext uint64 // next seq for the backlog lane
	boundary    uint64 // backlog is ≤ boundary, live is after it
	limiter     *rate.Limiter
	backlogAt   time.Time // the backlog lane may form its next batch then
	pauseUntil  time.Time
	failures    int // consecutive retryable failures
	refusedRun  int // batches dead-lettered in a row
	running     int
	queuedDL    map[uint64]bool // dead letters queued or in flight, by first seq
	rep         reporter
	reportNow   bool // report the status after this outcome (the first success, the end of an outage)
	retries     chan retryAsk
	stopped     chan struct{} // closed when Run returns
	results     chan outcome
}

// New returns a sender for st.
func New(st Store, o Options) (*Sender, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Sender{o: o, st: st, gw: st.GatewayID(), inc: st.Incarnation(), state: newTracker(o.Now),
		queuedDL: map[uint64]bool{}, retries: make(chan retryAsk), stopped: make(chan struct{}), results: make(chan outcome, o.InFlight)}
	if o.BacklogRate > 0 {
		s.limiter = rate.NewLimiter(rate.Limit(o.BacklogRate), max(o.BatchMaxReadings, int(o.BacklogRate)))
	}
	return s, nil
}

// Run sends until ctx ends. Batches recorded by an earlier run that were not
// acknowledged go first, unchanged; then live readings (those stored after
// Run started) and the backlog share the in-flight slots, live first.
func (s *Sender) Run(ctx context.Context) error {
	defer close(s.stopped)
	ob, err := s.st.Outbox()
	if err != nil {
		return fmt.Errorf("uplink: read outbox: %w", err)
	}
	for _, b := range ob.Batches {
		if !b.Acked {
			s.resend = append(s.resend, &job{first: b.First, last: b.Last})
		}
	}
	s.backlogNext, s.boundary, s.liveNext = ob.Acked+1, ob.LastSeq, ob.LastSeq+1
	s.o.Logger.Info("uplink starting", "url", Redacted(s.o.URL), "acked", ob.Acked, "last_seq", ob.LastSeq,
		"resending", len(s.resend), "dead_letters", len(ob.DeadLetters))
	if PlainHTTP(s.o.URL) {
		s.o.Logger.Warn("uplink: the URL is plain http:// to another host: the token and the readings cross the network unencrypted; use https://", "url", Redacted(s.o.URL))
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	status := time.NewTicker(s.o.StatusInterval)
	defer status.Stop()
	for {
		s.start(ctx)
		timer.Reset(s.wake())
		select {
		case o := <-s.results:
			s.running--
			s.handle(o)
			if s.reportNow {
				s.reportNow = false
				s.maybeReport(ctx)
			}
		case a := <-s.retries:
			n, err := s.queueDeadLetters(a)
			a.reply <- retryReply{n, err}
		case <-timer.C:
		case <-status.C:
			s.maybeReport(ctx)
		case <-ctx.Done():
			s.rep.wg.Wait()
			for ; s.running > 0; s.running-- {
				<-s.results // requests end with ctx; their batches stay recorded
			}
			return nil
		}
	}
}

// wake is how long to sleep when nothing happens: until the pause or the
// backlog limiter ends, or the next look for new readings.
func (s *Sender) wake() time.Duration {
	now := s.o.Now()
	d := s.o.FlushInterval
	if s.pauseUntil.After(now) {
		d = s.pauseUntil.Sub(now)
	} else if s.backlogAt.After(now) && s.backlogNext <= s.boundary {
		d = min(d, s.backlogAt.Sub(now))
	}
	return max(d, time.Millisecond)
}

// start launches jobs while slots are free. While the cloud fails, one probe
// at a time goes out, so an outage costs one request per backoff period.
func (s *Sender) start(ctx context.Context) {
	for s.running < s.o.InFlight {
		if s.o.Now().Before(s.pauseUntil) || (s.failures > 0 && s.running > 0) {
			return
		}
		j, err := s.next()
		if err != nil {
			s.o.Logger.Error("uplink: cannot form a batch", "err", err)
			s.pauseUntil = s.o.Now().Add(s.o.FlushInterval)
			return
		}
		if j == nil {
			return
		}
		s.running++
		go func() { s.results <- s.send(ctx, j) }()
		if s.failures > 0 {
			return
		}
	}
}

// next picks the next job: a recorded batch, else live readings, else the
// backlog if its rate allows. The store forms and records a new batch in
// one transaction, around the batches already recorded and short of
// readings held for clock repair.
func (s *Sender) next() (*job, error) {
	if len(s.resend) > 0 {
		j := s.resend[0]
		s.resend = s.resend[1:]
		return j, nil
	}
	j, next, err := s.form(s.liveNext, math.MaxUint64)
	s.liveNext = next
	if j != nil || err != nil {
		return j, err
	}
	if s.backlogNext > s.boundary || s.o.Now().Before(s.backlogAt) {
		return nil, nil
	}
	j, s.backlogNext, err = s.form(s.backlogNext, s.boundary)
	if j != nil && s.limiter != nil {
		r := s.limiter.ReserveN(s.o.Now(), j.count)
		s.backlogAt = s.o.Now().Add(r.Delay())
	}
	return j, err
}

// form forms and records a batch from the readings in [next, limit] and
// returns it (nil if there is nothing to send) with the new value of next.
func (s *Sender) form(next, limit uint64) (*job, uint64, error) {
	b, rs, after, err := s.st.FormBatch(next, limit, store.BatchLimits{
		MaxReadings: s.o.BatchMaxReadings, MaxBytes: s.o.BatchMaxSize, Size: readingJSONSize})
	if err != nil || len(rs) == 0 {
		return nil, after, err
	}
	j := &job{first: b.First, last: b.Last}
	if err := s.encode(j, rs); err != nil {
		return nil, after, err
	}
	return j, after, nil
}

func (s *Sender) encode(j *job, rs []store.Reading) error {
	raw, body, err := encodeBatch(s.gw, s.inc, j.first, j.last, rs)
	if err != nil {
		return err
	}
	j.raw, j.body, j.count = raw, body, len(rs)
	return nil
}

// load fetches and encodes a recorded batch's readings for its first send
// in this run, by their seq bounds: a batch that spans a gap holds few
// readings for its span.
func (s *Sender) load(j *job) error {
	rs, err := s.st.ReadingsBetween(j.first, j.last)
	if err != nil {
		return err
	}
	if len(rs) == 0 {
		return fmt.Errorf("uplink: batch %d-%d holds no readings", j.first, j.last)
	}
	return s.encode(j, rs)
}

// retryAsk asks Run to send dead letters again: the one starting at first,
// or all of them. Run answers on reply.
type retryAsk struct {
	first uint64
	all   bool
	reply chan retryReply
}

type retryReply struct {
	queued int
	err    error
}

// queueDeadLetters puts the dead letters a retry asks for first in line,
// oldest first, and returns how many it queued: one already queued or in
// flight is not queued again, so a retry asked twice is sent once.
func (s *Sender) queueDeadLetters(a retryAsk) (int, error) {
	ob, err := s.st.Outbox()
	if err != nil {
		return 0, err
	}
	var queue []*job
	found := false
	for _, d := range ob.DeadLetters {
		if !a.all && d.First != a.first {
			continue
		}
		found = true
		if !s.queuedDL[d.First] {
			s.queuedDL[d.First] = true
			queue = append(queue, &job{first: d.First, last: d.Last, deadLetter: true})
		}
	}
	if !a.all && !found {
		return 0, fmt.Errorf("%w: no dead letter starts at %d", store.ErrNotFound, a.first)
	}
	s.resend = append(queue, s.resend...)
	s.state.retrying(len(s.queuedDL))
	return len(queue), nil
}

// retried ends a dead letter's retry: the cloud answered it, or it could
// not be sent.
func (s *Sender) retried(j *job) {
	delete(s.queuedDL, j.first)
	s.state.retrying(len(s.queuedDL))
}

// ask hands a retry to Run and waits for its answer.
func (s *Sender) ask(ctx context.Context, a retryAsk) (int, error) {
	a.reply = make(chan retryReply, 1)
	select {
	case s.retries <- a:
	case <-s.stopped:
		return 0, ErrStopped
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	r := <-a.reply
	return r.queued, r.err
}

// ErrStopped refuses a retry once Run has returned.
var ErrStopped = errors.New("uplink: stopped")

// RetryDeadLetters sends every dead letter again, each as the same request
// as before, and returns how many it queued (those queued or in flight
// already are not queued twice). The cloud's answers come later: a batch
// it accepts leaves the dead letters.
func (s *Sender) RetryDeadLetters(ctx context.Context) (int, error) {
	return s.ask(ctx, retryAsk{all: true})
}

// RetryDeadLetter sends the dead letter starting at first again, as the
// same request (unless it is queued or in flight already); store.ErrNotFound
// if no dead letter starts at first.
func (s *Sender) RetryDeadLetter(ctx context.Context, first uint64) error {
	_, err := s.ask(ctx, retryAsk{first: first})
	return err
}

// Status returns the uplink's connectivity and backlog.
func (s *Sender) Status() Status { return s.state.status(s.st) }
