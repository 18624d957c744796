package sensors

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"fieldgate/store"
)

// fakeSensor returns what its read func says.
type fakeSensor struct {
	read func(ctx context.Context) ([]Measurement, error)
}

func (f *fakeSensor) Read(ctx context.Context) ([]Measurement, error) { return f.read(ctx) }

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

func TestPollerKeepsPollingAFailingSensor(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	flaky := &fakeSensor{read: func(context.Context) ([]Measurement, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 3 {
			return nil, errors.New("i2c: NACK")
		}
		return []Measurement{{Quantity: "temperature", Value: 20, Unit: "Cel"}}, nil
	}}
	good := &fakeSensor{read: func(context.Context) ([]Measurement, error) {
		return []Measurement{{Quantity: "humidity", Value: 40, Unit: "%RH"}}, nil
	}}
	sink := &recordSink{}
	p := NewPoller([]Entry{
		{Source: "flaky", Sensor: flaky, Interval: 5 * time.Millisecond},
		{Source: "good", Sensor: good, Interval: 5 * time.Millisecond},
	}, sink, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		bySource := map[string]int{}
		for _, r := range sink.readings() {
			bySource[r.Source]++
		}
		if bySource["flaky"] >= 2 && bySource["good"] >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readings by source %v: the flaky sensor never recovered or the good one stalled", bySource)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	polls, failures := p.Stats()
	if failures != 3 || polls < 7 {
		t.Errorf("polls %d, failures %d; want 3 failures among at least 7 polls", polls, failures)
	}
	for _, r := range sink.readings() {
		if err := r.Validate(); err != nil {
			t.Errorf("poller produced an invalid reading %+v: %v", r, err)
		}
		if r.Time.Location() != time.UTC {
			t.Errorf("reading time %v not in UTC", r.Time)
		}
	}
}

func TestPollerTimesOutAHungRead(t *testing.T) {
	hung := &fakeSensor{read: func(ctx context.Context) ([]Measurement, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	p := NewPoller([]Entry{{Source: "hung", Sensor: hung, Interval: 10 * time.Millisecond}}, &recordSink{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, failures := p.Stats(); failures >= 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a hung read was never timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
