package store

import (
	"bytes"
	"math"
	"testing"
	"time"
)

func FuzzDecodeReading(f *testing.F) {
	f.Add(encodeReading(nil, 1, &Reading{Value: 21.5, Unit: "Cel", Time: t0}))
	f.Add(encodeReading(nil, 70000, &Reading{Value: -3, Unit: "%RH", Time: time.Unix(0, -5), Clock: ClockUnsynced}))
	f.Add([]byte{})
	f.Add([]byte{readingFormat, 0, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Reading
		sid, err := decodeReading(b, &r)
		if err != nil {
			return
		}
		again := encodeReading(nil, sid, &r)
		var r2 Reading
		sid2, err := decodeReading(again, &r2)
		if err != nil || sid2 != sid || !sameReading(r, r2) {
			t.Fatalf("re-encoding changed the reading: %v (%d) → %v (%d), %v", r, sid, r2, sid2, err)
		}
	})
}

func FuzzReadingRoundTrip(f *testing.F) {
	f.Add("i2c1-0x44", "temperature", 21.5, "Cel", int64(1_750_000_000_000_000_000), uint8(0), uint32(1))
	f.Add("esp32", "humidity", math.Copysign(0, -1), "", int64(-1), uint8(1), uint32(math.MaxUint32))
	f.Fuzz(func(t *testing.T, src, q string, v float64, unit string, ns int64, clock uint8, sid uint32) {
		r := Reading{Source: src, Quantity: q, Value: v, Unit: unit, Time: time.Unix(0, ns).UTC(), Clock: Clock(clock)}
		if r.Validate() != nil {
			return
		}
		b := encodeReading(nil, sid, &r)
		var got Reading
		gotSID, err := decodeReading(b, &got)
		if err != nil {
			t.Fatalf("decode of a valid reading: %v", err)
		}
		got.Source, got.Quantity = src, q
		if gotSID != sid || !sameReading(got, r) {
			t.Fatalf("round trip: %v (%d), want %v (%d)", got, gotSID, r, sid)
		}
	})
}

func sameReading(a, b Reading) bool {
	return a.Source == b.Source && a.Quantity == b.Quantity && a.Unit == b.Unit && a.Clock == b.Clock &&
		a.Time.Equal(b.Time) && math.Float64bits(a.Value) == math.Float64bits(b.Value)
}

func TestIndexKeysSortByTime(t *testing.T) {
	times := []time.Time{time.Unix(-100, 0), time.Unix(-1, 999), time.Unix(0, 0), time.Unix(0, 1), t0, t0.Add(time.Nanosecond)}
	for i := 1; i < len(times); i++ {
		a, b := indexKey(7, times[i-1], 99), indexKey(7, times[i], 1)
		if bytes.Compare(a, b) >= 0 {
			t.Errorf("index key of %v does not sort before %v", times[i-1], times[i])
		}
	}
}

// TestTimesOutsideTheStoreAreInvalid: a time past 2262 wrapped around in
// the 64-bit nanosecond keys and was stored as a time in 1677.
func TestTimesOutsideTheStoreAreInvalid(t *testing.T) {
	for _, tm := range []time.Time{MinTime.Add(-time.Nanosecond), MaxTime.Add(time.Nanosecond), time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC)} {
		r := Reading{Source: "esp32", Quantity: "temperature", Value: 1, Time: tm}
		if r.Validate() == nil {
			t.Errorf("time %s accepted", tm)
		}
	}
	for _, tm := range []time.Time{MinTime, MaxTime} {
		r := Reading{Source: "esp32", Quantity: "temperature", Value: 1, Time: tm}
		if err := r.Validate(); err != nil {
			t.Errorf("time %s refused: %v", tm, err)
		}
	}
}
