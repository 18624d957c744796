package broker

import (
	"fmt"
	"sync"

	"fieldgate/store"
)

// quantities caps the distinct quantities (series) each device may create:
// without it one node sending SenML with made-up names made 5,000 series
// in ten messages, and every listing of sources with them. The set of a
// device is loaded from the store the first time it publishes.
type quantities struct {
	max    int
	series func() []store.SeriesKey

	mu   sync.Mutex
	devs map[string]map[string]bool
}

// errQuantityCap says why a reading of a new quantity was refused.
type errQuantityCap struct {
	quantity string
	max      int
}

func (e errQuantityCap) Error() string {
	return fmt.Sprintf("quantity %q refused: the device already has %d quantities, the most mqtt.max_quantities_per_device allows", e.quantity, e.max)
}

// admit returns the readings of rs that device may store — every known
// quantity, new ones while under the cap — and the error for the first
// refused.
func (q *quantities) admit(device string, rs []store.Reading) ([]store.Reading, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	known := q.devs[device]
	if known == nil {
		known = map[string]bool{}
		for _, k := range q.series() {
			if k.Source == device {
				known[k.Quantity] = true
			}
		}
		q.devs[device] = known
	}
	var refused error
	var out []store.Reading // built only once a reading is refused
	for i, r := range rs {
		if !known[r.Quantity] {
			if len(known) >= q.max {
				if refused == nil {
					refused = errQuantityCap{r.Quantity, q.max}
					out = append(make([]store.Reading, 0, len(rs)-1), rs[:i]...)
				}
				continue
			}
			known[r.Quantity] = true
		}
		if refused != nil {
			out = append(out, r)
		}
	}
	if refused == nil {
		return rs, nil
	}
	return out, refused
}
