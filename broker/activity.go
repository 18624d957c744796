package broker

import (
	"sync"
	"time"

	"fieldgate/store"
)

// DeviceUpdater is what the activity flush needs of the store.
type DeviceUpdater interface {
	UpdateDevices(fns map[string]func(*store.Device)) error
}

// activity counts what each device does in memory and writes it to the
// store in one transaction per flush, instead of one write per
// message (the SD card would not thank us).
type activity struct {
	mu   sync.Mutex
	devs map[string]*devActivity
	// load reads a device's stored counters the first time it is seen.
	load func(id string) (store.Device, error)
}

// A devActivity holds a device's counters as absolute values (what the
// store held when this process first saw the device, plus everything
// since) with how much of them a flush has written, and state (last
// seen, online, last reading, interval, last error). All of it stays in
// memory across flushes, so the live view is right whether or not a flush
// being written has landed: it never falls back to an older stored value,
// nor counts a flushed delta twice.
type devActivity struct {
	base        counts // stored when first seen
	total       counts // since first seen
	flushed     counts // of total, written to the store
	lastErr     string
	dirty       bool // state changed since the last flush
	lastSeen    time.Time
	online      *bool     // nil until a session or availability topic said
	newest      time.Time // newest reading time seen (not persisted)
	sessions    int       // live MQTT sessions
	saidOffline bool      // its availability topic said "offline"
	lastReading time.Time // when its last reading was stored (kept across flushes)
	interval    time.Duration
	samples     int // gaps the interval was learned from
}

// counts are a device's message counters.
type counts struct{ messages, readings, rejected uint64 }

func (c counts) plus(o counts) counts {
	return counts{c.messages + o.messages, c.readings + o.readings, c.rejected + o.rejected}
}

func (c counts) minus(o counts) counts {
	return counts{c.messages - o.messages, c.readings - o.readings, c.rejected - o.rejected}
}

// minGap is the shortest gap between messages that says something about a
// device's reporting interval: a node publishing temperature and humidity
// as two messages sends them a few milliseconds apart.
const minGap = time.Second

// learn folds the gap since the device's last reading into its learned
// reporting interval (a moving average that follows a changed interval
// within a few reports). a.mu is held.
func (d *devActivity) learn(t time.Time) {
	if !d.lastReading.IsZero() {
		if gap := t.Sub(d.lastReading); gap >= minGap {
			if d.interval == 0 {
				d.interval = gap
			} else {
				d.interval = (3*d.interval + gap) / 4
			}
			d.samples++
		} else if gap >= 0 {
			return // the same report: keep the time of its first message
		}
	}
	d.lastReading = t
}

func (a *activity) get(id string) *devActivity {
	if a.devs == nil {
		a.devs = map[string]*devActivity{}
	}
	d, ok := a.devs[id]
	if !ok {
		d = &devActivity{}
		if a.load != nil {
			if dev, err := a.load(id); err == nil { // not stored (yet): counts start at 0
				d.base = counts{dev.Messages, dev.Readings, dev.Rejected}
				d.interval, d.samples = dev.ReportInterval, dev.IntervalSamples // learning goes on; a gap across a restart is no interval
			}
		}
		a.devs[id] = d
	}
	return d
}

// message records a message from id at t: readings stored, or a rejection.
func (a *activity) message(id string, t time.Time, readings int, rejectErr error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.get(id)
	d.total.messages++
	d.total.readings += uint64(readings)
	d.lastSeen, d.dirty = t, true
	if readings > 0 {
		d.learn(t)
	}
	if rejectErr != nil {
		d.total.rejected++
		d.lastErr = rejectErr.Error()
	}
}

// A device is online while it has at least one live session and its
// availability topic (ESPHome's status, Tasmota's LWT) last said so, if it
// has one. Two connections of one device, or a reconnect taking over the
// session of a connection not yet closed, keep it online until the last
// one ends.

// sessionStarted records a new session of device id at t.
func (a *activity) sessionStarted(id string, t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.get(id)
	d.sessions++
	d.saidOffline = false
	d.changed(t)
}

// sessionEnded records the end of one of id's sessions at t.
func (a *activity) sessionEnded(id string, t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.get(id)
	d.sessions = max(0, d.sessions-1)
	d.changed(t)
}

// reported records what id's availability topic said at t.
func (a *activity) reported(id string, online bool, t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.get(id)
	d.saidOffline = !online
	d.changed(t)
}

// changed marks the online state for the next flush. a.mu is held.
func (d *devActivity) changed(t time.Time) {
	online := d.sessions > 0 && !d.saidOffline
	d.online, d.lastSeen, d.dirty = &online, t, true
}

// newest returns the newest reading time seen from id, and records t if newer.
func (a *activity) newestReading(id string, t time.Time) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.get(id)
	prev := d.newest
	if t.After(d.newest) {
		d.newest = t
	}
	return prev
}

// forget drops what was seen of device id (it was deleted).
func (a *activity) forget(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.devs, id)
}

// flush writes what changed since the last flush to the store, in one
// transaction for the whole fleet. What it wrote counts as flushed only
// once the transaction committed: a failed flush is written by the next.
func (a *activity) flush(st DeviceUpdater) error {
	type written struct {
		d     *devActivity
		state devActivity
		delta counts
	}
	a.mu.Lock()
	pending := make(map[string]written, len(a.devs))
	for id, d := range a.devs {
		delta := d.total.minus(d.flushed)
		if !d.dirty && delta == (counts{}) {
			continue
		}
		pending[id] = written{d, *d, delta}
		d.dirty = false
	}
	a.mu.Unlock()
	fns := make(map[string]func(*store.Device), len(pending))
	for id, w := range pending {
		fns[id] = func(dev *store.Device) { w.state.applyTo(dev, w.delta) }
	}
	err := st.UpdateDevices(fns)
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, w := range pending {
		switch {
		case a.devs[id] != w.d: // forgotten meanwhile
		case err != nil:
			w.d.dirty = true
		default:
			w.d.flushed = w.d.flushed.plus(w.delta)
		}
	}
	return err
}

// applyTo adds delta and the state to a stored device.
func (p *devActivity) applyTo(dev *store.Device, delta counts) {
	dev.Messages += delta.messages
	dev.Readings += delta.readings
	dev.Rejected += delta.rejected
	p.stateTo(dev)
}

// stateTo writes the state (not the counters) into a device.
func (p *devActivity) stateTo(dev *store.Device) {
	if p.lastErr != "" {
		dev.LastError = p.lastErr
	}
	if p.lastSeen.After(dev.LastSeen) {
		dev.LastSeen = p.lastSeen.UTC()
	}
	if p.online != nil {
		dev.Online = *p.online
	}
	if p.lastReading.After(dev.LastReading) {
		dev.LastReading = p.lastReading.UTC()
	}
	if p.interval > 0 {
		dev.ReportInterval, dev.IntervalSamples = p.interval, p.samples
	}
}

// live returns d as it is now: the counters and state in memory replace
// the stored ones, which may or may not include a flush being written.
func (a *activity) live(d store.Device) store.Device {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p, ok := a.devs[d.ID]; ok {
		p.stateTo(&d)
		c := p.base.plus(p.total)
		d.Messages, d.Readings, d.Rejected = c.messages, c.readings, c.rejected
	}
	return d
}
