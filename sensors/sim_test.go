package sensors

import (
	"context"
	"testing"
	"time"
)

func TestSimFollowsDailyCycle(t *testing.T) {
	var now time.Time
	s := NewSim(SimOpts{Seed: "lab", Now: func() time.Time { return now }})
	day := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	meanAt := func(hour int) (temp, rh float64) {
		const n = 200
		for i := range n {
			now = day.Add(time.Duration(hour)*time.Hour + time.Duration(i)*time.Second)
			ms, err := s.Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != 2 || ms[0].Quantity != "temperature" || ms[0].Unit != "Cel" || ms[1].Quantity != "humidity" || ms[1].Unit != "%RH" {
				t.Fatalf("measurements %+v", ms)
			}
			if ms[1].Value < 0 || ms[1].Value > 100 || ms[0].Value < -10 || ms[0].Value > 45 {
				t.Fatalf("implausible reading %+v", ms)
			}
			temp += ms[0].Value / n
			rh += ms[1].Value / n
		}
		return temp, rh
	}
	nightT, nightRH := meanAt(3)
	dayT, dayRH := meanAt(15)
	if dayT-nightT < 5 {
		t.Errorf("15:00 mean %.2f °C, 03:00 mean %.2f °C: want a daily swing of several degrees", dayT, nightT)
	}
	if dayRH >= nightRH {
		t.Errorf("humidity %.1f %%RH by day, %.1f by night: it should fall as the room warms", dayRH, nightRH)
	}
}

func TestSimSeedsDiffer(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC) }
	a, _ := NewSim(SimOpts{Seed: "a", Now: now}).Read(context.Background())
	a2, _ := NewSim(SimOpts{Seed: "a", Now: now}).Read(context.Background())
	b, _ := NewSim(SimOpts{Seed: "b", Now: now}).Read(context.Background())
	if a[0] != a2[0] {
		t.Errorf("same seed, different readings: %v %v", a, a2)
	}
	if a[0] == b[0] {
		t.Errorf("different seeds, same reading %v", a)
	}
}

func TestSimHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewSim(SimOpts{}).Read(ctx); err == nil {
		t.Error("Read with a cancelled context succeeded")
	}
}
