package sensors

import (
	"errors"
	"strings"
	"testing"

	"periph.io/x/conn/v3/i2c"
)

type closingBus struct {
	fakeBus
	closed int
}

func (c *closingBus) Close() error { c.closed++; return nil }

func TestBusesOpensOnceRetriesAndCloses(t *testing.T) {
	opens := 0
	fail := true
	bus := &closingBus{}
	b := NewBuses(func(n int) (i2c.BusCloser, error) {
		opens++
		if fail {
			return nil, ErrNoBus
		}
		return bus, nil
	})
	if _, err := b.Get(1); !errors.Is(err, ErrNoBus) {
		t.Fatalf("Get of a missing bus: %v", err)
	}
	fail = false
	for range 3 {
		got, err := b.Get(1)
		if err != nil || got != bus {
			t.Fatalf("Get: %v %v", got, err)
		}
	}
	if opens != 2 {
		t.Errorf("opened %d times, want 2 (one failure, then once for all users)", opens)
	}
	if err := b.Close(); err != nil || bus.closed != 1 {
		t.Errorf("Close: %v, bus closed %d times", err, bus.closed)
	}
}

func TestOpenHostBusExplainsAMissingBus(t *testing.T) {
	_, err := OpenHostBus(97)
	if !errors.Is(err, ErrNoBus) || !strings.Contains(err.Error(), "raspi-config") {
		t.Fatalf("OpenHostBus(97): %v", err)
	}
}
