package sensors

import (
	"context"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// Sim is a simulated temperature and humidity sensor. Temperature follows a
// daily cycle (coolest around 03:00, warmest around 15:00 local time) with
// slow random drift and measurement noise; relative humidity moves opposite
// to temperature, as it does in a closed room, and stays within 0–100 %RH.
type Sim struct {
	now func() time.Time

	mu    sync.Mutex
	rng   *rand.Rand
	drift float64 // slow random walk, °C
	mean  float64 // daily mean, °C
}

// SimOpts configure a Sim.
type SimOpts struct {
	// Seed makes the sequence reproducible; two sims with different seeds
	// look like two different rooms. Default 1.
	Seed string
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

// NewSim returns a simulated sensor.
func NewSim(opts SimOpts) *Sim {
	h := fnv.New64a()
	_, _ = h.Write([]byte(opts.Seed)) // hash writes never fail
	seed := h.Sum64()
	if opts.Now == nil {
		opts.Now = time.Now
	}
	rng := rand.New(rand.NewPCG(seed, seed>>7|1))
	return &Sim{now: opts.Now, rng: rng, mean: 18 + 6*rng.Float64()}
}

// Read returns a temperature (Cel) and a relative humidity (%RH).
func (s *Sim) Read(ctx context.Context) ([]Measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	hour := float64(t.Hour()) + float64(t.Minute())/60 + float64(t.Second())/3600
	daily := 4 * math.Sin(2*math.Pi*(hour-9)/24) // peak at 15:00
	s.drift = 0.98*s.drift + 0.05*s.rng.NormFloat64()
	temp := s.mean + daily + s.drift + 0.05*s.rng.NormFloat64()
	rh := 55 - 2.5*(temp-s.mean) + 0.3*s.rng.NormFloat64()
	rh = min(max(rh, 0), 100)
	return []Measurement{
		{Quantity: "temperature", Value: round(temp, 2), Unit: "Cel"},
		{Quantity: "humidity", Value: round(rh, 1), Unit: "%RH"},
	}, nil
}

// round keeps the resolution a real sensor reports.
func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
