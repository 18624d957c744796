package receiver

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"fieldgate/cmd/fieldgate-cloud/receiver/pgtest"
)

// historyGateways is how many gateways the history is spread over.
const historyGateways = 200

// BenchmarkStoreBeside stores batches of 500 readings for a gateway that
// has sent before, beside a readings table already holding a year's
// history of 200 gateways (10M or 100M rows, received evenly over the 12
// months before this one), for each layout: partitioned by month, as the
// schema is, and one table keyed by the identity, as schema version 6
// was. Select one size with -bench 'StoreBeside/rows=10M'; each history is
// written once per run, which takes minutes for 100M rows.
func BenchmarkStoreBeside(b *testing.B) {
	for _, rows := range []int{0, 10_000_000, 100_000_000} {
		for _, layout := range []string{"partitioned", "single"} {
			name := fmt.Sprintf("rows=%dM/%s", rows/1_000_000, layout)
			b.Run(name, func(b *testing.B) {
				db := historyDB(b, name, rows, layout == "single")
				next := uint64(rows/historyGateways) + 1 // gw-0's seqs go on
				b.ResetTimer()
				for range b.N {
					bb := batch("gw-0", next, make([]float64, 500)...)
					bb.Incarnation = "history"
					if _, err := db.StoreBatch(b.Context(), bb, mustJSON(b, bb)); err != nil {
						b.Fatal(err)
					}
					next += 500
				}
				b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "readings/s")
			})
		}
	}
}

// histories keeps each benchmark's database across the runs the testing
// package makes of it (to size b.N), so that a history is written once.
var histories = struct {
	sync.Mutex
	dbs map[string]*DB
}{dbs: map[string]*DB{}}

// historyDB is a database holding rows readings of historyGateways
// gateways, received over the 12 months before this one, with their batch
// records; single keeps schema version 6 (one table).
func historyDB(b *testing.B, name string, rows int, single bool) *DB {
	histories.Lock()
	defer histories.Unlock()
	if db := histories.dbs[name]; db != nil {
		return db
	}
	ctx := context.Background()
	db, err := Open(ctx, pgtest.NewDB(b), DBOptions{StatementTimeout: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	if single {
		_, _, err = db.migrateTo(ctx, 6)
	} else {
		_, _, err = db.Migrate(ctx)
	}
	if err != nil {
		b.Fatal(err)
	}
	start := monthStart(time.Now()).AddDate(-1, 0, 0)
	for m := 0; m < 12 && !single; m += PartitionsAhead + 1 {
		if _, err := db.EnsurePartitions(ctx, start.AddDate(0, m, 0)); err != nil {
			b.Fatal(err)
		}
	}
	step := time.Duration(int64(365*24*time.Hour) / int64(max(rows, 1)))
	began := time.Now()
	const chunk = 1_000_000
	for lo := 0; lo < rows; lo += chunk {
		hi := min(lo+chunk, rows) - 1
		// Reading g is gateway g%200's seq g/200+1, received at start+g*step.
		for _, sql := range []string{
			`INSERT INTO readings (gateway_id, incarnation, seq, source, quantity, value, unit, time, clock, received)
			SELECT 'gw-' || (g % 200), 'history', g / 200 + 1, 'esp32-' || (g % 5), 'temperature', (g % 1000) * 0.01, 'Cel',
				$3::timestamptz + g * $4::interval, 'synced', $3::timestamptz + g * $4::interval
			FROM generate_series($1::bigint, $2::bigint) g`,
			`INSERT INTO batches (gateway_id, incarnation, first_seq, last_seq, readings, digest, received)
			SELECT 'gw-' || (g % 200), 'history', g / 200 + 1, g / 200 + 500, 500, '\x00', $3::timestamptz + g * $4::interval
			FROM generate_series($1::bigint, $2::bigint) g WHERE (g / 200) % 500 = 0`,
		} {
			if _, err := db.pool.Exec(ctx, sql, lo, hi, start, fmt.Sprintf("%d microseconds", step.Microseconds())); err != nil {
				b.Fatal(err)
			}
		}
	}
	if _, err := db.pool.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
	if rows > 0 {
		b.Logf("%s: %d rows written in %s", name, rows, time.Since(began).Round(time.Second))
	}
	histories.dbs[name] = db
	return db
}
