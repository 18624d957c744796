// Package payload decodes the MQTT payloads ESP32 nodes publish into values
// with SenML units (RFC 8428): plain numbers (hand-written firmware and
// ESPHome state topics), SenML JSON packs, and Tasmota's tele/…/SENSOR JSON.
//
// Every decoder returns an error wrapping ErrInvalid for a payload it cannot
// use, so that the broker can count it and answer MQTT 5 clients with 0x99.
package payload

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid marks a payload that cannot be decoded.
var ErrInvalid = errors.New("payload format invalid")

// MaxSize is the largest payload decoded; the broker's packet limit is
// smaller anyway.
const MaxSize = 64 << 10

// Value is one decoded measurement.
type Value struct {
	Quantity string
	Value    float64
	// Unit is a SenML unit: Cel, %RH, Pa, ppm, lx, … or "" when unknown.
	Unit string
	// Time is when it was measured; zero means "stamp on receipt".
	Time time.Time
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Number decodes a payload that is just a number, such as "21.5" from
// PubSubClient firmware or an ESPHome state topic. The unit is the one
// conventional for the quantity (see DefaultUnit); "nan" (what ESPHome sends
// for a failed read) is rejected. It allocates nothing for a valid payload:
// it is every plain publish's path.
func Number(quantity string, p []byte) (Value, error) {
	b := bytes.TrimSpace(p)
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return Value{}, invalid("%q is not a number", truncate(string(b)))
	}
	unit, v := Normalize(quantity, DefaultUnit(quantity), v)
	return Value{Quantity: quantity, Value: v, Unit: unit}, nil
}

// canonical maps common quantity names and abbreviations to fieldgate's.
var canonical = map[string]string{
	"temperature": "temperature", "temp": "temperature", "t": "temperature",
	"humidity": "humidity", "hum": "humidity", "rh": "humidity", "h": "humidity",
	"pressure": "pressure", "press": "pressure", "p": "pressure",
	"co2": "co2", "carbondioxide": "co2",
}

// Quantity returns the canonical name for a quantity ("temp" → "temperature"),
// or name itself, lowercased, when it has none.
func Quantity(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	if c, ok := canonical[n]; ok {
		return c
	}
	return n
}

// DefaultUnit is the unit a bare number is taken to be in, per quantity:
// what firmware prints. Pressure in hPa, as every weather sensor library
// reports it; it is stored in Pa.
func DefaultUnit(quantity string) string {
	q := strings.ToLower(quantity)
	switch {
	case strings.HasSuffix(q, "temperature") || q == "dewpoint":
		return "Cel"
	case strings.HasSuffix(q, "humidity"):
		return "%RH"
	case strings.HasSuffix(q, "pressure"):
		return "hPa"
	case q == "co2" || strings.HasSuffix(q, "co2"):
		return "ppm"
	case strings.HasSuffix(q, "voltage") || q == "vcc" || q == "battery_voltage":
		return "V"
	case strings.HasSuffix(q, "current"):
		return "A"
	case strings.HasSuffix(q, "power"):
		return "W"
	case strings.HasSuffix(q, "energy"):
		return "kWh" // what Tasmota and ESPHome's total energy sensors report
	case strings.HasSuffix(q, "illuminance") || q == "lux":
		return "lx"
	case q == "rssi" || strings.HasSuffix(q, "signal") || strings.HasSuffix(q, "wifi_signal"):
		return "dBm"
	case strings.HasSuffix(q, "battery_level"): // a bare "battery" is a voltage as often as a level
		return "%EL"
	case q == "pm25" || q == "pm10" || q == "pm1" || strings.HasPrefix(q, "pm2"):
		return "ug/m3"
	}
	return ""
}

// Normalize converts v in unit to the SenML unit fieldgate stores for it:
// Fahrenheit and kelvin to Cel, hPa/kPa/mbar/bar to Pa, "%" for a humidity
// to %RH. Units it does not know pass through unchanged.
func Normalize(quantity, unit string, v float64) (string, float64) {
	switch strings.TrimSpace(unit) {
	case "Cel", "°C", "C", "degC", "celsius":
		return "Cel", v
	case "°F", "F", "degF", "fahrenheit":
		return "Cel", round((v - 32) * 5 / 9)
	case "K":
		return "Cel", round(v - 273.15)
	case "%RH", "%rh":
		return "%RH", v
	case "%":
		if strings.HasSuffix(strings.ToLower(quantity), "humidity") {
			return "%RH", v
		}
		return "%", v
	case "hPa", "mbar":
		return "Pa", round(v * 100)
	case "kPa":
		return "Pa", round(v * 1000)
	case "bar":
		return "Pa", round(v * 1e5)
	case "mmHg":
		return "Pa", round(v * 133.322387415)
	}
	return unit, v
}

// round keeps conversions from adding float noise (21.999999).
func round(v float64) float64 { return math.Round(v*1e6) / 1e6 }

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
