package store

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestIndexReturnsExactlyTheRange(t *testing.T) {
	s := mustOpen(t, Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	// Three series interleaved, each reading at a random time within a day,
	// appended out of time order: the index must still sort them by time.
	sources := []string{"i2c1-0x44", "i2c1-0x45", "esp32-a"}
	var all []Reading
	for i := range 3000 {
		r := Reading{
			Source: sources[i%3], Quantity: "temperature", Value: float64(i), Unit: "Cel",
			Time: t0.Add(time.Duration(rng.Int64N(int64(24 * time.Hour)))),
		}
		all = append(all, r)
	}
	for i := 0; i < len(all); i += 500 {
		mustAppend(t, s, all[i:i+500]...)
	}
	from, to := t0.Add(6*time.Hour), t0.Add(7*time.Hour)
	var want []Reading
	for _, r := range all {
		if r.Source == "i2c1-0x45" && !r.Time.Before(from) && r.Time.Before(to) {
			want = append(want, r)
		}
	}
	slices.SortStableFunc(want, func(a, b Reading) int { return a.Time.Compare(b.Time) })
	if len(want) < 10 {
		t.Fatalf("test data too thin: %d readings in range", len(want))
	}

	q := Query{Source: "i2c1-0x45", Quantity: "temperature", From: from, To: to}
	got, err := s.Readings(q)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got, want, func(a, b Reading) bool { return a.Seq == b.Seq && a.Value == b.Value && a.Time.Equal(b.Time) }) {
		t.Fatalf("range query: got %d readings, want %d\n got %v\nwant %v", len(got), len(want), got, want)
	}
	n, err := s.Count(q)
	if err != nil || n != len(want) {
		t.Errorf("Count = %d, %v; want %d", n, err, len(want))
	}

	q.Offset, q.Limit = 3, 4
	page, err := s.Readings(q)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 4 || page[0].Seq != want[3].Seq || page[3].Seq != want[6].Seq {
		t.Errorf("offset 3 limit 4: got %v, want %v", page, want[3:7])
	}

	latest, ok, err := s.Latest(SeriesKey{"i2c1-0x45", "temperature"})
	if err != nil || !ok {
		t.Fatalf("Latest: %v %v", ok, err)
	}
	var newest Reading
	for _, r := range all {
		if r.Source == "i2c1-0x45" && r.Time.After(newest.Time) {
			newest = r
		}
	}
	if latest.Seq != newest.Seq {
		t.Errorf("Latest = %v, want %v", latest, newest)
	}
	if _, ok, _ := s.Latest(SeriesKey{"nope", "temperature"}); ok {
		t.Error("Latest of an unknown series reported a reading")
	}
	if got, err := s.Readings(Query{Source: "nope", Quantity: "temperature"}); err != nil || len(got) != 0 {
		t.Errorf("unknown series: %v, %v", got, err)
	}
}

// TestLatestOfLastSeries covers the series with the highest id, whose index
// entries run to the end of the bucket.
func TestLatestOfLastSeries(t *testing.T) {
	s := mustOpen(t, Options{})
	mustAppend(t, s, reading("a", "q", 0, 1), reading("b", "q", 5, 2), reading("b", "q", 3, 3))
	r, ok, err := s.Latest(SeriesKey{"b", "q"})
	if err != nil || !ok || r.Value != 2 {
		t.Fatalf("Latest(b) = %v %v %v, want value 2", r, ok, err)
	}
	r, ok, err = s.Latest(SeriesKey{"a", "q"})
	if err != nil || !ok || r.Value != 1 {
		t.Fatalf("Latest(a) = %v %v %v, want value 1", r, ok, err)
	}
}
