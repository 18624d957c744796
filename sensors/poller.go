package sensors

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"fieldgate/store"
)

// Sink receives readings without waiting for them to be on disk: the
// store's Enqueue.
type Sink interface {
	Enqueue(ctx context.Context, rs ...store.Reading) error
}

// Entry is one sensor to poll.
type Entry struct {
	// Source is the readings' source id, e.g. "i2c1-0x44" or "sim-lab".
	Source   string
	Sensor   Sensor
	Interval time.Duration
}

// Poller polls sensors, each on its own interval, until its context ends.
type Poller struct {
	entries []Entry
	sink    Sink
	log     *slog.Logger
	now     func() time.Time

	polls, failures atomic.Uint64
}

// NewPoller returns a poller for entries that writes to sink.
func NewPoller(entries []Entry, sink Sink, log *slog.Logger) *Poller {
	return &Poller{entries: entries, sink: sink, log: log, now: time.Now}
}

// Run polls until ctx ends: each sensor at once, then on every tick of its
// interval. A failed read is logged (the daemon's log handler rate-limits
// repeats) and tried again on the next tick.
func (p *Poller) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, e := range p.entries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.loop(ctx, e)
		}()
	}
	wg.Wait()
}

func (p *Poller) loop(ctx context.Context, e Entry) {
	log := p.log.With("source", e.Source)
	t := time.NewTicker(e.Interval)
	defer t.Stop()
	for {
		p.poll(ctx, e, log)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poll reads one sensor once, with a timeout of one interval.
func (p *Poller) poll(ctx context.Context, e Entry, log *slog.Logger) {
	rctx, cancel := context.WithTimeout(ctx, e.Interval)
	defer cancel()
	p.polls.Add(1)
	ms, err := e.Sensor.Read(rctx)
	if err != nil {
		if ctx.Err() == nil {
			p.failures.Add(1)
			log.Warn("sensor read failed", "err", err)
		}
		return
	}
	at := p.now().UTC()
	rs := make([]store.Reading, len(ms))
	for i, m := range ms {
		rs[i] = store.Reading{Source: e.Source, Quantity: m.Quantity, Value: m.Value, Unit: m.Unit, Time: at}
	}
	if err := p.sink.Enqueue(ctx, rs...); err != nil && ctx.Err() == nil {
		log.Error("sensor readings not queued", "err", err, "readings", len(rs))
	}
}

// Stats returns how many polls ran and how many failed.
func (p *Poller) Stats() (polls, failures uint64) {
	return p.polls.Load(), p.failures.Load()
}
