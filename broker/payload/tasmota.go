package payload

import (
	"encoding/json"
	"slices"
	"strings"
)

// tasmotaFields are the numeric fields of Tasmota sensor objects that
// fieldgate stores, with their quantity names.
var tasmotaFields = map[string]string{
	"Temperature":   "temperature",
	"Humidity":      "humidity",
	"DewPoint":      "dewpoint",
	"Pressure":      "pressure",
	"SeaPressure":   "seapressure",
	"CarbonDioxide": "co2",
	"eCO2":          "eco2", // estimated by a VOC sensor, not measured
	"Illuminance":   "illuminance",
}

// Tasmota decodes the JSON of a tele/{device}/SENSOR message, e.g.
//
//	{"Time":"2024-05-01T12:00:00","AM2301":{"Temperature":21.5,"Humidity":45.2},"TempUnit":"C"}
//
// Each object with known fields is a sensor. With one sensor the quantities
// are plain ("temperature"); with several they are prefixed by the sensor
// ("ds18b20-1_temperature") so that they stay apart. TempUnit F is
// converted to Cel, PressureUnit (hPa by default) to Pa. Tasmota's Time is
// the device's local time without a zone, so readings are stamped on
// receipt instead.
func Tasmota(p []byte) ([]Value, error) {
	if len(p) > MaxSize {
		return nil, invalid("Tasmota message of %d bytes is too large", len(p))
	}
	var msg map[string]json.RawMessage
	if err := json.Unmarshal(p, &msg); err != nil {
		return nil, invalid("not a Tasmota SENSOR JSON object: %v", err)
	}
	tempUnit, pressUnit := "C", "hPa"
	_ = json.Unmarshal(msg["TempUnit"], &tempUnit)      // absent: Celsius
	_ = json.Unmarshal(msg["PressureUnit"], &pressUnit) // absent: hPa
	type sensor struct {
		name   string
		fields map[string]json.RawMessage
	}
	var sensors []sensor
	for name, raw := range msg {
		var fields map[string]json.RawMessage
		if json.Unmarshal(raw, &fields) != nil {
			continue // Time, TempUnit and other scalars
		}
		for f := range fields {
			if _, ok := tasmotaFields[f]; ok {
				sensors = append(sensors, sensor{name, fields})
				break
			}
		}
	}
	if len(sensors) == 0 {
		return nil, invalid("no sensor with temperature, humidity, pressure or CO2 in the message")
	}
	slices.SortFunc(sensors, func(a, b sensor) int { return strings.Compare(a.name, b.name) })
	var out []Value
	for _, s := range sensors {
		keys := make([]string, 0, len(s.fields))
		for f := range s.fields {
			keys = append(keys, f)
		}
		slices.Sort(keys)
		for _, f := range keys {
			q, ok := tasmotaFields[f]
			if !ok {
				continue
			}
			var v float64
			if err := json.Unmarshal(s.fields[f], &v); err != nil {
				return nil, invalid("%s.%s is not a number", s.name, f)
			}
			unit := DefaultUnit(q)
			switch {
			case q == "temperature" || q == "dewpoint":
				unit = tempUnit
			case strings.HasSuffix(q, "pressure"):
				unit = pressUnit
			case q == "illuminance":
				unit = "lx"
			}
			if len(sensors) > 1 {
				q = strings.ToLower(s.name) + "_" + q
			}
			unit, v = Normalize(q, unit, v)
			out = append(out, Value{Quantity: q, Value: v, Unit: unit})
		}
	}
	return out, nil
}
