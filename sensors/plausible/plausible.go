// Package plausible says which values no real sensor can read: the one
// table of physical bounds that the local sensors' poller and the MQTT
// broker both apply, so that a humidity of 150 %RH or a DS18B20's -127 °C
// error value is refused wherever it comes from.
package plausible

import (
	"fmt"
	"math"
)

// A bound applies to readings in one of the units fieldgate stores (SenML
// names), optionally of one quantity only.
type bound struct {
	quantity, unit string // quantity "" applies to every quantity in unit
	lo, hi         float64
}

var bounds = []bound{
	{"", "%RH", 0, 100},
	// Every ambient temperature on Earth and the widest range of the common
	// digital probes (DS18B20, TMP117: -55 to 125/150 °C); a DS18B20 that
	// lost its bus reads -127.
	{"", "Cel", -60, 150},
	{"pressure", "Pa", 30_000, 110_000}, // barometric: the Dead Sea to the top of Everest, with margin
	{"co2", "ppm", 0, 40_000},           // the SCD4x's range
}

// Range returns the plausible range of quantity in unit; ok is false when
// the table has none (any finite value goes).
func Range(quantity, unit string) (lo, hi float64, ok bool) {
	for _, b := range bounds {
		if b.unit == unit && (b.quantity == "" || b.quantity == quantity) {
			return b.lo, b.hi, true
		}
	}
	return 0, 0, false
}

// Check returns an error that names the value and its plausible range when
// v cannot be a real reading of quantity in unit.
func Check(quantity, unit string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%s=%v is not a number", quantity, v)
	}
	if lo, hi, ok := Range(quantity, unit); ok && (v < lo || v > hi) {
		return fmt.Errorf("%s=%v%s is implausible (plausible %v to %v)", quantity, v, unit, lo, hi)
	}
	return nil
}
