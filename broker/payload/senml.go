package payload

import (
	"encoding/json"
	"math"
	"strings"
	"time"
)

// senmlRecord is one record of a SenML JSON pack (RFC 8428 §4).
type senmlRecord struct {
	BaseName  string   `json:"bn"`
	BaseTime  float64  `json:"bt"`
	BaseUnit  string   `json:"bu"`
	BaseValue float64  `json:"bv"`
	Name      string   `json:"n"`
	Unit      string   `json:"u"`
	Value     *float64 `json:"v"`
	String    *string  `json:"vs"`
	Bool      *bool    `json:"vb"`
	Data      *string  `json:"vd"`
	Sum       *float64 `json:"s"`
	Time      float64  `json:"t"`
}

// relativeLimit: a resolved SenML time below 2^28 s is relative to now
// (RFC 8428 §4.5.3).
const relativeLimit = 1 << 28

// SenML decodes a SenML JSON pack: base name, time, unit and value apply to
// the records that follow them; times are seconds since 1970 or, when small,
// relative to now. Each record's quantity is the last part of its resolved
// name ("urn:dev:mac:0024befffe804ff1:temp" → "temperature"). Records with
// string, boolean or data values carry no measurement and are skipped; a
// pack with no numeric record is invalid.
func SenML(p []byte, now time.Time) ([]Value, error) {
	if len(p) > MaxSize {
		return nil, invalid("SenML pack of %d bytes is too large", len(p))
	}
	var pack []senmlRecord
	if err := json.Unmarshal(p, &pack); err != nil {
		return nil, invalid("not a SenML JSON pack: %v", err)
	}
	var out []Value
	var base senmlRecord
	for i, r := range pack {
		if r.BaseName != "" {
			base.BaseName = r.BaseName
		}
		if r.BaseTime != 0 {
			base.BaseTime = r.BaseTime
		}
		if r.BaseUnit != "" {
			base.BaseUnit = r.BaseUnit
		}
		if r.BaseValue != 0 {
			base.BaseValue = r.BaseValue
		}
		name := base.BaseName + r.Name
		if name == "" {
			return nil, invalid("record %d has no name", i)
		}
		if r.Value == nil {
			if r.String == nil && r.Bool == nil && r.Data == nil && r.Sum == nil {
				return nil, invalid("record %d (%s) has no value", i, truncate(name))
			}
			continue
		}
		v := base.BaseValue + *r.Value
		t := base.BaseTime + r.Time
		if math.IsNaN(v) || math.IsInf(v, 0) || math.IsNaN(t) || math.IsInf(t, 0) {
			return nil, invalid("record %d is not a finite number", i)
		}
		var at time.Time
		switch {
		case t == 0:
			// no time: stamped on receipt
		case math.Abs(t) < relativeLimit:
			at = now.Add(time.Duration(t * float64(time.Second)))
		default:
			// A float64 of ~1.7e9 s holds about microseconds: round there, so
			// 1276020076.001 is .001 s and not .000999927.
			sec, frac := math.Modf(t)
			at = time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC()
		}
		unit := r.Unit
		if unit == "" {
			unit = base.BaseUnit
		}
		q := Quantity(lastPart(name))
		if unit == "" {
			unit = DefaultUnit(q)
		}
		unit, v = Normalize(q, unit, v)
		out = append(out, Value{Quantity: q, Value: v, Unit: unit, Time: at})
	}
	if len(out) == 0 {
		return nil, invalid("SenML pack holds no numeric value")
	}
	return out, nil
}

// lastPart is what follows the last ':' or '/' of a SenML name.
func lastPart(name string) string {
	if i := strings.LastIndexAny(name, ":/"); i >= 0 && i < len(name)-1 {
		return name[i+1:]
	}
	return name
}
