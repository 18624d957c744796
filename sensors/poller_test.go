package sensors

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fieldgate/sensors/sensirion"
	"fieldgate/store"
)

// fakeSensor returns what its read func says.
type fakeSensor struct {
	read   func(ctx context.Context) ([]Measurement, error)
	closed atomic.Int32
}

func (f *fakeSensor) Read(ctx context.Context) ([]Measurement, error) { return f.read(ctx) }
func (f *fakeSensor) Close() error                                    { f.closed.Add(1); return nil }

// recordSink keeps every reading enqueued.
type recordSink struct {
	mu sync.Mutex
	rs []store.Reading
}

func (r *recordSink) Enqueue(_ context.Context, rs ...store.Reading) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rs = append(r.rs, rs...)
	return nil
}

func (r *recordSink) readings() []store.Reading {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]store.Reading(nil), r.rs...)
}

func temp(v float64) []Measurement {
	return []Measurement{{Quantity: Temperature, Value: v, Unit: "Cel"}}
}

// entry returns an Entry whose Open hands out s and counts the opens.
func entry(name string, s Sensor, opens *atomic.Int32) Entry {
	return Entry{
		Name: name, Source: "i2c1-0x44", Driver: "sht3x", Interval: 10 * time.Millisecond,
		// Far above the interval: a slow machine (or qemu) must not turn a
		// read into a timeout where timeouts are not what is tested.
		Timeout: time.Second,
		MinTemp: -40, MaxTemp: 125,
		Open: func() (Sensor, error) {
			if opens != nil {
				opens.Add(1)
			}
			return s, nil
		},
	}
}

// single returns a poller over one entry and its polled state.
func single(e Entry, sink Sink, opts PollerOpts) (*Poller, *polled) {
	p := NewPoller([]Entry{e}, sink, opts)
	return p, p.groups[0][0]
}

func TestHealthFailsThenRecovers(t *testing.T) {
	var calls atomic.Int32
	s := &fakeSensor{read: func(context.Context) ([]Measurement, error) {
		if calls.Add(1) <= 4 {
			return nil, errors.New("i2c: NACK")
		}
		return temp(21.5), nil
	}}
	var opens atomic.Int32
	sink := &recordSink{}
	p, ps := single(entry("cabinet", s, &opens), sink, PollerOpts{})
	ctx := context.Background()
	want := []State{StateDegraded, StateDegraded, StateFailing, StateFailing, StateOK}
	for i, w := range want {
		p.poll(ctx, ps)
		if h := p.Health()[0]; h.State != w {
			t.Fatalf("after poll %d: state %s, want %s (%+v)", i+1, h.State, w, h)
		}
	}
	h := p.Health()[0]
	if h.Failures[FailBus] != 4 || h.Polls != 5 || h.ConsecutiveFailures != 0 || h.LastError != "i2c: NACK" || h.LastGood.IsZero() {
		t.Errorf("health %+v", h)
	}
	// Once failing, every retry opens the chip afresh.
	if opens.Load() != 3 || s.closed.Load() != 2 {
		t.Errorf("opened %d times, closed %d: a failing sensor must be closed and reopened", opens.Load(), s.closed.Load())
	}
	if rs := sink.readings(); len(rs) != 1 || rs[0].Value != 21.5 || rs[0].Source != "i2c1-0x44" || rs[0].Unit != "Cel" {
		t.Errorf("readings %+v", rs)
	}
}

func TestHealthCountsCRCAndBacksOff(t *testing.T) {
	s := &fakeSensor{read: func(context.Context) ([]Measurement, error) {
		return nil, &sensirion.CRCError{Word: 1, Got: 2, Want: 3}
	}}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p, ps := single(Entry{Name: "x", Interval: 30 * time.Second, MaxTemp: 100, Open: func() (Sensor, error) { return s, nil }},
		&recordSink{}, PollerOpts{Now: func() time.Time { return now }})
	var waits []time.Duration
	for range 8 {
		p.poll(context.Background(), ps)
		waits = append(waits, ps.due.Sub(now))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
	for i := range want {
		if waits[i] != want[i]*time.Second {
			t.Fatalf("retry waits %v, want %v seconds", waits, want)
		}
	}
	if h := p.Health()[0]; h.Failures[FailCRC] != 8 {
		t.Errorf("CRC failures %d, want 8", h.Failures[FailCRC])
	}
}

func TestReadTimesOutAndHoldsTheBus(t *testing.T) {
	release := make(chan struct{})
	var inRead atomic.Bool
	s := &fakeSensor{read: func(ctx context.Context) ([]Measurement, error) {
		inRead.Store(true)
		defer inRead.Store(false)
		<-release // a driver stuck in I/O, deaf to ctx
		return temp(20), nil
	}}
	e := entry("stuck", s, nil)
	e.Timeout = 20 * time.Millisecond
	p, ps := single(e, &recordSink{}, PollerOpts{})
	done := make(chan struct{})
	go func() { p.poll(context.Background(), ps); close(done) }()
	time.Sleep(60 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("poll returned while the driver still held the bus")
	default:
	}
	close(release)
	<-done
	h := p.Health()[0]
	if h.Failures[FailTimeout] != 1 || !strings.Contains(h.LastError, "read timed out after 20ms") {
		t.Errorf("health after a timeout: %+v", h)
	}
	if inRead.Load() {
		t.Error("poll returned before the read")
	}
}

func TestImplausibleValuesAreRejectedAndCounted(t *testing.T) {
	s := &fakeSensor{read: func(context.Context) ([]Measurement, error) {
		return []Measurement{
			{Quantity: Temperature, Value: 21, Unit: "Cel"},
			{Quantity: Humidity, Value: 150, Unit: "%RH"},
			{Quantity: Pressure, Value: 5, Unit: "Pa"},
		}, nil
	}}
	sink := &recordSink{}
	e := entry("wet", s, nil)
	e.Offsets = map[string]float64{Temperature: -0.5}
	p, ps := single(e, sink, PollerOpts{})
	p.poll(context.Background(), ps)
	rs := sink.readings()
	if len(rs) != 1 || rs[0].Quantity != Temperature || rs[0].Value != 20.5 {
		t.Fatalf("stored %+v, want only the temperature with its -0.5 offset", rs)
	}
	h := p.Health()[0]
	if h.State != StateDegraded || h.Failures[FailImplausible] != 2 || !strings.Contains(h.LastError, "humidity=150%RH") {
		t.Errorf("health %+v", h)
	}
	// A temperature outside the chip's range is rejected too.
	e.MaxTemp = 20
	p, ps = single(e, sink, PollerOpts{})
	p.poll(context.Background(), ps)
	if h := p.Health()[0]; h.Failures[FailImplausible] != 3 {
		t.Errorf("a temperature over the chip's maximum was accepted: %+v", h)
	}
}

func TestOpenFailureIsFailingAtOnceAndRetried(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	e := entry("unplugged", nil, nil)
	s := &fakeSensor{read: func(context.Context) ([]Measurement, error) { return temp(19), nil }}
	e.Open = func() (Sensor, error) {
		if fail.Load() {
			return nil, errors.New("i2c bus 1 (/dev/i2c-1) not found")
		}
		return s, nil
	}
	p, ps := single(e, &recordSink{}, PollerOpts{})
	p.poll(context.Background(), ps)
	h := p.Health()[0]
	if h.State != StateFailing || h.Failures[FailOpen] != 1 || !strings.Contains(h.LastError, "/dev/i2c-1") {
		t.Fatalf("after a failed open: %+v", h)
	}
	fail.Store(false)
	p.poll(context.Background(), ps)
	if h := p.Health()[0]; h.State != StateOK {
		t.Fatalf("after the sensor came back: %+v", h)
	}
}

func TestFrozenValueIsFlagged(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	i := 0
	s := &fakeSensor{read: func(context.Context) ([]Measurement, error) {
		i++
		if i <= 12 {
			return temp(20 + float64(i%3)/10), nil // jitters like a real sensor
		}
		return temp(20.1), nil // then sticks
	}}
	p, ps := single(entry("stuck", s, nil), &recordSink{}, PollerOpts{FrozenAfter: time.Hour, Now: func() time.Time { return now }})
	for range 12 {
		p.poll(context.Background(), ps)
		now = now.Add(10 * time.Minute)
	}
	if h := p.Health()[0]; h.State != StateOK {
		t.Fatalf("a jittering sensor: %+v", h)
	}
	for range 7 {
		p.poll(context.Background(), ps)
		now = now.Add(10 * time.Minute)
	}
	h := p.Health()[0]
	if h.State != StateDegraded || len(h.Frozen) != 1 || h.Frozen[0] != Temperature {
		t.Fatalf("a value stuck for over an hour: %+v", h)
	}
}

func TestSensorsOnOneBusAreNeverReadAtOnce(t *testing.T) {
	var active, maxActive atomic.Int32
	read := func(context.Context) ([]Measurement, error) {
		n := active.Add(1)
		for {
			m := maxActive.Load()
			if n <= m || maxActive.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		active.Add(-1)
		return temp(20), nil
	}
	var entries []Entry
	for _, name := range []string{"a", "b", "c", "d"} {
		e := entry(name, &fakeSensor{read: read}, nil)
		e.Bus, e.Interval = "i2c-1", 3*time.Millisecond
		entries = append(entries, e)
	}
	sink := &recordSink{}
	p := NewPoller(entries, sink, PollerOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	p.Run(ctx)
	if m := maxActive.Load(); m != 1 {
		t.Errorf("%d reads at once on one bus", m)
	}
	for _, h := range p.Health() {
		if h.Polls < 5 {
			t.Errorf("sensor %s polled %d times: starved", h.Name, h.Polls)
		}
	}
}

func TestRunStopsAndClosesSensors(t *testing.T) {
	s := &fakeSensor{read: func(context.Context) ([]Measurement, error) { return temp(20), nil }}
	p := NewPoller([]Entry{entry("a", s, nil)}, &recordSink{}, PollerOpts{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	for deadline := time.Now().Add(5 * time.Second); p.Health()[0].Polls == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the sensor was never polled")
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if s.closed.Load() != 1 {
		t.Errorf("sensor closed %d times at shutdown, want 1", s.closed.Load())
	}
}
