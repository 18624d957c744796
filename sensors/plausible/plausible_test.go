package plausible

import (
	"math"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		quantity, unit string
		v              float64
		want           string // "" means plausible
	}{
		{"humidity", "%RH", 55, ""},
		{"humidity", "%RH", 150, "humidity=150%RH is implausible (plausible 0 to 100)"},
		{"soil_humidity", "%RH", -1, "implausible"},
		{"temperature", "Cel", 21.5, ""},
		{"water_temperature", "Cel", -127, "implausible"}, // a DS18B20 without its bus
		{"temperature", "Cel", 85, ""},                    // a DS18B20's power-on value is a real temperature
		{"pressure", "Pa", 101_325, ""},
		{"pressure", "Pa", 1013, "implausible"}, // hPa sent as Pa
		{"water_pressure", "Pa", 500_000, ""},   // not barometric: no bound
		{"co2", "ppm", 640, ""},
		{"co2", "ppm", -5, "implausible"},
		{"voltage", "V", 3.3, ""},
		{"voltage", "V", math.NaN(), "not a number"},
		{"rssi", "", math.Inf(-1), "not a number"},
	} {
		err := Check(c.quantity, c.unit, c.v)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s %v %s: %v, want plausible", c.quantity, c.v, c.unit, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s %v %s: %v, want %q", c.quantity, c.v, c.unit, err, c.want)
		}
	}
}
