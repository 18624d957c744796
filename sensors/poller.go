package sensors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"fieldgate/sensors/plausible"
	"fieldgate/store"
)

// Sink receives readings without waiting for them to be on disk: the
// store's Enqueue.
type Sink interface {
	Enqueue(ctx context.Context, rs ...store.Reading) error
}

// Entry is one sensor to poll.
type Entry struct {
	// Name is the sensor's name in the configuration.
	Name string
	// Source is the readings' source id: "i2c1-0x44", "sim-lab".
	Source string
	// Driver is the driver's name, for health reports.
	Driver string
	// Bus groups sensors that share hardware: sensors with the same Bus are
	// polled one at a time by one goroutine. Empty: a bus of its own.
	Bus string
	// Interval between polls; Timeout bounds one read (default: the
	// smaller of Interval and 5 s).
	Interval, Timeout time.Duration
	// Open opens (or re-opens) the sensor. It is called again after a
	// failed open and after repeated read failures, so a sensor that was
	// unplugged is picked up when it comes back.
	Open func() (Sensor, error)
	// Offsets are calibration offsets added per quantity.
	Offsets map[string]float64
	// MinTemp and MaxTemp bound plausible temperatures (°C).
	MinTemp, MaxTemp float64
}

// PollerOpts configure a Poller.
type PollerOpts struct {
	// Logger receives failures (the daemon's handler rate-limits repeats).
	Logger *slog.Logger
	// FrozenAfter flags a value unchanged this long. Default 2 h.
	FrozenAfter time.Duration
	// MaxBackoff caps the wait before retrying a failing sensor. Default
	// the larger of the sensor's interval and 1 minute.
	MaxBackoff time.Duration
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Stamp dates readings. Default: Now, trusted as synced.
	Stamp store.Stamp
}

// Poller polls sensors: one goroutine per bus, each sensor on its own
// interval. Failures are retried with backoff and recorded in the sensor's
// health; they never stop the poller.
type Poller struct {
	opts   PollerOpts
	sink   Sink
	groups [][]*polled

	mu sync.Mutex // guards every polled's health
}

// polled is one sensor's state. Only its bus goroutine touches sensor,
// due and frozen; health is read under Poller.mu.
type polled struct {
	e      Entry
	log    *slog.Logger // per sensor, so rate limits apply per sensor
	sensor Sensor
	due    time.Time
	frozen map[string]*frozenTracker
	health Health
}

var errReadTimeout = errors.New("read timed out")

// NewPoller returns a poller for entries writing to sink.
func NewPoller(entries []Entry, sink Sink, opts PollerOpts) *Poller {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.FrozenAfter <= 0 {
		opts.FrozenAfter = 2 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Stamp == nil {
		opts.Stamp = store.Trusted(opts.Now)
	}
	p := &Poller{opts: opts, sink: sink}
	byBus := map[string]int{}
	for _, e := range entries {
		if e.Timeout <= 0 {
			e.Timeout = min(e.Interval, 5*time.Second)
		}
		ps := &polled{e: e, log: opts.Logger.With("sensor", e.Name), frozen: map[string]*frozenTracker{}, health: Health{
			Name: e.Name, Source: e.Source, Driver: e.Driver, State: StateStarting, Failures: map[string]uint64{},
		}}
		if i, ok := byBus[e.Bus]; ok && e.Bus != "" {
			p.groups[i] = append(p.groups[i], ps)
			continue
		}
		byBus[e.Bus] = len(p.groups)
		p.groups = append(p.groups, []*polled{ps})
	}
	return p
}

// Run polls until ctx ends, then closes the sensors.
func (p *Poller) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, g := range p.groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.busLoop(ctx, g)
		}()
	}
	wg.Wait()
}

// busLoop polls the sensors of one bus, one at a time, each when it is due.
func (p *Poller) busLoop(ctx context.Context, group []*polled) {
	defer func() {
		for _, ps := range group {
			p.closeSensor(ps)
		}
	}()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		next := group[0]
		for _, ps := range group[1:] {
			if ps.due.Before(next.due) {
				next = ps
			}
		}
		t.Reset(time.Until(next.due))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if ctx.Err() != nil {
			return
		}
		p.poll(ctx, next)
	}
}

// poll opens the sensor if needed, reads it once and schedules the next poll.
func (p *Poller) poll(ctx context.Context, ps *polled) {
	start := p.opts.Now()
	if ps.sensor == nil {
		s, err := ps.e.Open()
		if err != nil {
			p.fail(ps, FailOpen, err, true)
			return
		}
		ps.sensor = s
	}
	ms, err := p.read(ctx, ps)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		p.fail(ps, classify(err), err, false)
		return
	}
	at, clk, mono := p.opts.Stamp()
	at = at.UTC()
	rs, rejected := p.check(ps, ms, at)
	for i := range rs {
		rs[i].Clock, rs[i].Mono = clk, mono
	}
	p.mu.Lock()
	h := &ps.health
	h.Polls++
	h.ConsecutiveFailures = 0
	if len(rejected) > 0 {
		h.Failures[FailImplausible] += uint64(len(rejected))
		h.LastError, h.LastErrorAt = "implausible "+rejected[0], at
	}
	if len(rs) > 0 {
		h.LastGood = at
	}
	h.State = h.state(len(rejected) > 0)
	p.mu.Unlock()
	if len(rejected) > 0 {
		ps.log.Warn("sensor value rejected as physically impossible", "value", rejected[0])
	}
	ps.due = nextDue(ps.due, start, ps.e.Interval)
	if len(rs) == 0 {
		return
	}
	if err := p.sink.Enqueue(ctx, rs...); err != nil && ctx.Err() == nil {
		ps.log.Error("sensor readings not stored", "readings", len(rs), "err", err)
	}
}

// nextDue keeps the sensor's cadence, skipping polls missed while the bus
// was busy rather than bunching them up.
func nextDue(due, now time.Time, interval time.Duration) time.Time {
	next := due.Add(interval)
	if next.Before(now) {
		return now.Add(interval)
	}
	return next
}

// read runs one Read with the entry's timeout. Drivers block in I/O that
// cannot be cancelled, so on timeout the bus stays unusable until the read
// returns: read waits for it (or for shutdown) before giving the bus to the
// next sensor.
func (p *Poller) read(ctx context.Context, ps *polled) ([]Measurement, error) {
	rctx, cancel := context.WithTimeout(ctx, ps.e.Timeout)
	defer cancel()
	type result struct {
		ms  []Measurement
		err error
	}
	done := make(chan result, 1)
	s := ps.sensor
	go func() {
		ms, err := s.Read(rctx)
		done <- result{ms, err}
	}()
	select {
	case r := <-done:
		if r.err != nil && rctx.Err() != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("%w after %s: %v", errReadTimeout, ps.e.Timeout, r.err)
		}
		return r.ms, r.err
	case <-rctx.Done():
		select {
		case r := <-done: // finished as the deadline passed
			if r.err == nil {
				return r.ms, nil
			}
			return nil, fmt.Errorf("%w after %s: %v", errReadTimeout, ps.e.Timeout, r.err)
		default:
		}
		select { // hold the bus until the stuck transaction ends
		case <-done:
		case <-ctx.Done():
			// Shutting down with a read stuck in the driver: abandon the
			// device rather than block on it in Close.
			ps.sensor = nil
		}
		return nil, fmt.Errorf("%w after %s", errReadTimeout, ps.e.Timeout)
	}
}

// check applies calibration offsets and rejects impossible values. It
// returns the readings to store and the rejected values, described.
func (p *Poller) check(ps *polled, ms []Measurement, at time.Time) ([]store.Reading, []string) {
	rs := make([]store.Reading, 0, len(ms))
	var rejected, frozen []string
	for _, m := range ms {
		v := m.Value + ps.e.Offsets[m.Quantity]
		lo, hi, ok := plausible.Range(m.Quantity, m.Unit)
		if !ok {
			lo, hi = math.Inf(-1), math.Inf(1)
		}
		if m.Quantity == Temperature { // the driver's datasheet range is narrower
			lo, hi = ps.e.MinTemp, ps.e.MaxTemp
		}
		if math.IsNaN(v) || math.IsInf(v, 0) || v < lo || v > hi {
			rejected = append(rejected, fmt.Sprintf("%s=%v%s (plausible %v to %v)", m.Quantity, v, m.Unit, lo, hi))
			continue
		}
		ft := ps.frozen[m.Quantity]
		if ft == nil {
			ft = &frozenTracker{}
			ps.frozen[m.Quantity] = ft
		}
		if ft.observe(v, at, p.opts.FrozenAfter) {
			frozen = append(frozen, m.Quantity)
		}
		rs = append(rs, store.Reading{Source: ps.e.Source, Quantity: m.Quantity, Value: v, Unit: m.Unit, Time: at})
	}
	p.mu.Lock()
	was := len(ps.health.Frozen)
	ps.health.Frozen = frozen
	p.mu.Unlock()
	if len(frozen) > was {
		ps.log.Warn("sensor value frozen: the sensing element may be stuck", "quantities", frozen, "for", p.opts.FrozenAfter)
	}
	return rs, rejected
}

// fail records a failed open or read and schedules a retry with backoff.
// After failingAfter failures in a row the sensor is closed, so that the
// next attempt opens it afresh (a chip that lost power needs its setup again).
func (p *Poller) fail(ps *polled, kind string, err error, openFailed bool) {
	now := p.opts.Now()
	p.mu.Lock()
	h := &ps.health
	h.Polls++
	h.Failures[kind]++
	h.ConsecutiveFailures++
	h.LastError, h.LastErrorAt = err.Error(), now.UTC()
	n := h.ConsecutiveFailures
	if openFailed && h.LastGood.IsZero() {
		h.ConsecutiveFailures = max(h.ConsecutiveFailures, failingAfter)
	}
	h.State = h.state(false)
	p.mu.Unlock()
	ps.log.Warn("sensor failed", "kind", kind, "err", err)
	if n >= failingAfter {
		p.closeSensor(ps)
	}
	ps.due = now.Add(p.backoff(ps, n))
}

// backoff doubles from the smaller of the interval and 1 s up to MaxBackoff.
func (p *Poller) backoff(ps *polled, failures int) time.Duration {
	base := min(ps.e.Interval, time.Second)
	limit := p.opts.MaxBackoff
	if limit <= 0 {
		limit = max(ps.e.Interval, time.Minute)
	}
	d := base << min(failures-1, 20)
	return min(d, limit)
}

func (p *Poller) closeSensor(ps *polled) {
	if c, ok := ps.sensor.(io.Closer); ok {
		if err := c.Close(); err != nil {
			ps.log.Warn("sensor close failed", "err", err)
		}
	}
	ps.sensor = nil
}

// Health returns every sensor's health, sorted by name.
func (p *Poller) Health() []Health {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Health
	for _, g := range p.groups {
		for _, ps := range g {
			h := ps.health
			h.Failures = maps.Clone(ps.health.Failures)
			h.Frozen = slices.Clone(ps.health.Frozen)
			out = append(out, h)
		}
	}
	slices.SortFunc(out, func(a, b Health) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}
