package receiver

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"fieldgate/uplink/wire"
)

// TestRacingOverlapsStoreEachReadingOnce stores overlapping batches of one
// gateway with different bounds from many connections at once, as replicas
// do when a gateway's retries and splits land on different ones. No unique
// index holds a reading's identity on the partitioned table: the gateway's
// lock does, and every reading is stored exactly once.
func TestRacingOverlapsStoreEachReadingOnce(t *testing.T) {
	r := newReceiver(t, Options{})
	values := make([]float64, 200)
	for i := range values {
		values[i] = float64(i + 1)
	}
	var bs []wire.BatchBody
	for _, span := range [][2]int{{1, 200}, {1, 100}, {101, 200}, {51, 150}, {1, 50}, {151, 200}, {76, 125}, {1, 200}} {
		bs = append(bs, batch("gw-a", uint64(span[0]), values[span[0]-1:span[1]]...))
	}
	for round := range 10 {
		var wg sync.WaitGroup
		errs := make(chan error, len(bs))
		for _, b := range bs {
			b.Incarnation = fmt.Sprint("round-", round)
			wg.Go(func() {
				if _, err := r.db.StoreBatch(t.Context(), b, mustJSON(t, b)); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	if n := r.count("SELECT count(*) FROM readings"); n != 2000 {
		t.Errorf("%d readings, want 200 in each of 10 incarnations", n)
	}
	if n := r.count("SELECT count(*) FROM (SELECT DISTINCT gateway_id, incarnation, seq FROM readings) d"); n != 2000 {
		t.Errorf("%d distinct identities", n)
	}
}

// TestPartitionsAndRetention: readings go to this month's partition, made
// ahead of time with the next ones; months whose readings were all
// received before a cutoff are dropped whole, with their batch records,
// and the month that holds the cutoff stays.
func TestPartitionsAndRetention(t *testing.T) {
	r := newReceiver(t, Options{})
	ctx := t.Context()
	now := time.Now()
	this := monthStart(now)
	ps, err := r.db.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	want := fmt.Sprint([]string{monthName(this), monthName(this.AddDate(0, 1, 0)), monthName(this.AddDate(0, 2, 0)), "readings_default"})
	if fmt.Sprint(names) != want {
		t.Fatalf("partitions %v, want %s", names, want)
	}
	if a := r.put(r.tokens["gw-a"], batch("gw-a", 1, 1, 2, 3), nil); a.status != 200 {
		t.Fatalf("a batch: %+v", a)
	}
	if n := r.count("SELECT count(*) FROM " + monthName(this)); n != 3 {
		t.Errorf("%d readings in this month's partition, want 3", n)
	}

	// Three months of history, as a receiver that ran then made them.
	if created, err := r.db.EnsurePartitions(ctx, this.AddDate(0, -3, 0)); err != nil || len(created) != 3 {
		t.Fatalf("partitions for three months back: %v, %v", created, err)
	}
	for back := 1; back <= 3; back++ {
		at := this.AddDate(0, -back, 5)
		for _, sql := range []string{
			`INSERT INTO batches (gateway_id, first_seq, last_seq, readings, digest, received) VALUES ('gw-old', $1, $1, 1, '\x00', $2)`,
			`INSERT INTO readings (gateway_id, seq, source, quantity, value, unit, time, clock, received) VALUES ('gw-old', $1, 's', 'q', 0, '', $2, 'synced', $2)`,
		} {
			if _, err := r.db.pool.Exec(ctx, sql, back, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	cutoff := this.AddDate(0, -1, 10) // inside last month: that month stays
	dropped, err := r.db.DropBefore(ctx, cutoff)
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) != 2 || dropped[0].Name != monthName(this.AddDate(0, -3, 0)) || dropped[1].Name != monthName(this.AddDate(0, -2, 0)) {
		t.Fatalf("dropped %+v, want the months three and two back", dropped)
	}
	if n := r.count("SELECT count(*) FROM readings WHERE gateway_id = 'gw-old'"); n != 1 {
		t.Errorf("%d old readings left, want last month's", n)
	}
	if n := r.count("SELECT count(*) FROM batches WHERE gateway_id = 'gw-old'"); n != 1 {
		t.Errorf("%d old batch records left, want last month's", n)
	}
	if n := r.count("SELECT count(*) FROM readings WHERE gateway_id = 'gw-a'"); n != 3 {
		t.Errorf("%d of this month's readings left, want 3", n)
	}
	if a := r.put(r.tokens["gw-a"], batch("gw-a", 1, 1, 2, 3), nil); a.status != 200 {
		t.Errorf("a replay after the drop: %+v", a)
	}
}

// TestADefaultPartitionTakesWhatNoMonthDoes: with no partition for its
// month (a receiver that did not run its upkeep), a reading still goes in,
// to the default partition; that month can then not be made, which is
// reported.
func TestADefaultPartitionTakesWhatNoMonthDoes(t *testing.T) {
	r := newReceiver(t, Options{})
	ctx := t.Context()
	past := monthStart(time.Now()).AddDate(-1, 0, 0)
	if _, err := r.db.pool.Exec(ctx, `INSERT INTO readings (gateway_id, seq, source, quantity, value, unit, time, clock, received)
		VALUES ('gw-old', 1, 's', 'q', 0, '', $1, 'synced', $1)`, past); err != nil {
		t.Fatal(err)
	}
	if n := r.count("SELECT count(*) FROM readings_default"); n != 1 {
		t.Errorf("%d readings in the default partition, want 1", n)
	}
	if _, err := r.db.EnsurePartitions(ctx, past); err == nil {
		t.Error("a month whose readings are in the default partition was made")
	}
}
