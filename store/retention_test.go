package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRetentionDeletesOnlyUploadedReadingsByAge(t *testing.T) {
	now := t0.Add(10 * 24 * time.Hour)
	opts := Options{Now: func() time.Time { return now }, Config: Config{Retention: RetentionConfig{

		// 100 readings nine days old, then 100 fresh ones.
		MaxAge: 24 * time.Hour}}}
	s := mustOpen(t, opts)

	old := make([]Reading, 100)
	for i := range old {
		old[i] = reading("a", "temperature", i, 1)
	}
	mustAppend(t, s, old...)
	fresh := make([]Reading, 100)
	for i := range fresh {
		fresh[i] = Reading{Source: "a", Quantity: "temperature", Value: 2, Unit: "Cel", Time: now.Add(-time.Minute)}
	}
	mustAppend(t, s, fresh...)

	// Nothing uploaded yet: retention must keep everything.
	mustCheckpoint(t, s) // retention works on what reached bbolt
	mustDo(t, s.applyRetention())
	if n := s.Stats().Readings; n != 200 {
		t.Fatalf("retention deleted un-uploaded readings: %d left of 200", n)
	}
	// The cloud acknowledged 1-60 and 101-150.
	mustRecord(t, s, 1, 60)
	mustDo(t, s.AckBatch(1))
	mustRecord(t, s, 101, 150)
	mustDo(t, s.AckBatch(101))
	mustCheckpoint(t, s) // retention works on what reached bbolt
	mustDo(t, s.applyRetention())
	rest, err := s.ReadingsAfter(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 140 || rest[0].Seq != 61 {
		t.Fatalf("after retention: %d readings starting at %d, want 140 starting at 61", len(rest), rest[0].Seq)
	}
	dropped, retired, err := s.Removed()
	if err != nil {
		t.Fatal(err)
	}
	if retired != 60 || dropped[keyRetentionDeleted] != 0 {
		t.Errorf("retention deleted %d, want 60, and never counted as dropped (%v)", retired, dropped)
	}
	// Index entries went with the readings.
	n, err := s.Count(Query{Source: "a", Quantity: "temperature"})
	if err != nil || n != 140 {
		t.Errorf("index holds %d entries, want 140", n)
	}
	mustCheck(t, s)
}

func TestRetentionLocalOnlyAppliesToAll(t *testing.T) {
	now := t0.Add(10 * 24 * time.Hour)
	s := mustOpen(t, Options{LocalOnly: true, Now: func() time.Time { return now }, Config: Config{Retention: RetentionConfig{MaxAge: 24 * time.Hour}}})
	fill(t, s, "a", 50)
	mustAppend(t, s, Reading{Source: "a", Quantity: "temperature", Value: 2, Time: now})
	mustCheckpoint(t, s) // retention works on what reached bbolt
	mustDo(t, s.applyRetention())
	if n := s.Stats().Readings; n != 1 {
		t.Fatalf("%d readings left, want only the fresh one", n)
	}
}

func TestFullStoreDropOldestCountsEveryDrop(t *testing.T) {
	s := mustOpen(t, Options{Config: Config{MaxSize: 1 << 20, FullPolicy: FullDropOldest}})
	fill(t, s, "a", 100)
	mustRecord(t, s, 1, 100)    // in flight: must survive the policy
	const total = 100 + 40*1000 // about 4 MiB of readings into a 1 MiB cap
	for i := 100; i < total; i += 1000 {
		rs := make([]Reading, 1000)
		for j := range rs {
			rs[j] = reading("a", "temperature", i+j, float64(i+j))
		}
		mustAppend(t, s, rs...)
	}
	st := s.Stats()
	if st.UsedBytes > st.MaxBytes {
		t.Errorf("used %d bytes over the %d cap", st.UsedBytes, st.MaxBytes)
	}
	dropped, _, err := s.Removed()
	if err != nil {
		t.Fatal(err)
	}
	if dropped[reasonFullDropOldest] == 0 {
		t.Fatal("nothing dropped: the test did not fill the store")
	}
	if got := uint64(st.Readings) + dropped[reasonFullDropOldest]; got != total {
		t.Errorf("stored %d + dropped %d = %d, want %d: a reading went missing uncounted", st.Readings, dropped[reasonFullDropOldest], got, total)
	}
	in, err := s.ReadingsAfter(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(in) != 100 || in[0].Seq != 1 || in[99].Seq != 100 {
		t.Errorf("the in-flight batch 1-100 was not spared: first readings %v…", in[:3])
	}
	newest, _, _ := s.Latest(SeriesKey{"a", "temperature"})
	if newest.Seq != total {
		t.Errorf("newest reading %d, want %d", newest.Seq, total)
	}
	mustCheck(t, s)
}

func TestFullStoreRejectNew(t *testing.T) {
	s := mustOpen(t, Options{Config: Config{MaxSize: 1 << 20, FullPolicy: FullRejectNew, CommitInterval: time.Millisecond}})
	var err error
	stored := 0
	// Fill in batches of 1000, then one by one up to the last byte.
	for _, size := range []int{1000, 1} {
		err = nil
		for i := 0; err == nil && i < 100000; i++ {
			rs := make([]Reading, size)
			for j := range rs {
				rs[j] = reading("a", "temperature", stored+j, 1)
			}
			if err = s.Append(context.Background(), rs...); err == nil {
				stored += len(rs)
			}
		}
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("Append into a full store: %v, want ErrFull", err)
	}
	t.Logf("store full after %d readings: %v", stored, err)
	if n := s.Stats().Readings; n != int64(stored) {
		t.Errorf("%d readings stored, want %d: reject_new must keep what it has", n, stored)
	}
	// Queued readings refused by the policy are counted.
	mustDo(t, s.Enqueue(context.Background(), reading("a", "temperature", 0, 1), reading("a", "temperature", 1, 1)))
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, _, err := s.Removed()
		mustDo(t, err)
		if d[reasonFullRejectNew] == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dropped %v, want full_reject_new=2", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Once the cloud acknowledged data, retention makes room again.
	mustRecord(t, s, 1, 5000)
	mustDo(t, s.AckBatch(1))
	mustAppend(t, s, reading("a", "temperature", 0, 1))
}

// TestRetentionDeletesInBatches: deleting each minute's expired readings
// every minute cost a bbolt commit a minute. Retention waits until the
// oldest reading is an hour (at a 24 h max_age) past due, then deletes all
// that is due.
func TestRetentionDeletesInBatches(t *testing.T) {
	now := t0.Add(10 * 24 * time.Hour)
	s := mustOpen(t, Options{LocalOnly: true, Now: func() time.Time { return now }, Config: Config{Retention: RetentionConfig{MaxAge: 24 * time.Hour}}})
	for i, age := range []time.Duration{24*time.Hour + 50*time.Minute, 24*time.Hour + 10*time.Minute, 23 * time.Hour} {
		mustAppend(t, s, Reading{Source: "a", Quantity: "temperature", Value: float64(i), Time: now.Add(-age)})
	}
	mustCheckpoint(t, s)
	mustDo(t, s.applyRetention())
	if n := s.Stats().Readings; n != 3 {
		t.Fatalf("%d readings left; the oldest is 50 minutes past due, within the hour's slack: want all 3", n)
	}
	now = now.Add(15 * time.Minute) // the oldest is now 65 minutes past due
	mustDo(t, s.applyRetention())
	if n := s.Stats().Readings; n != 1 {
		t.Fatalf("%d readings left, want the one not yet 24 h old", n)
	}
}
