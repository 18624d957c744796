package receiver

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"fieldgate/cmd/fieldgate-cloud/receiver/pgtest"
	"fieldgate/uplink/wire"
)

// BenchmarkStoreBatch stores batches of 500 readings one after the other,
// the way StoreBatch does (one statement: the batch row and the readings
// through unnest) and the way the issue suggested first (a transaction:
// the batch row, COPY into a temporary table, INSERT … SELECT … ON CONFLICT
// DO NOTHING). It is why StoreBatch is written as it is.
func BenchmarkStoreBatch(b *testing.B) {
	for _, way := range []struct {
		name  string
		store func(context.Context, *DB, wire.BatchBody, []byte) error
	}{
		{"unnest", func(ctx context.Context, d *DB, bb wire.BatchBody, js []byte) error {
			_, err := d.StoreBatch(ctx, bb, js)
			return err
		}},
		{"copy", storeByCopy},
	} {
		b.Run(way.name, func(b *testing.B) {
			db, err := Open(b.Context(), pgtest.NewDB(b), DBOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if _, _, err := db.Migrate(b.Context()); err != nil {
				b.Fatal(err)
			}
			batches := make([]wire.BatchBody, b.N)
			bodies := make([][]byte, b.N)
			for i := range batches {
				batches[i] = batch("gw-a", uint64(i*500+1), make([]float64, 500)...)
				bodies[i] = mustJSON(b, batches[i])
			}
			b.ResetTimer()
			for i := range b.N {
				if err := way.store(b.Context(), db, batches[i], bodies[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "readings/s")
		})
	}
}

// storeByCopy stores a new batch through COPY into a temporary table.
func storeByCopy(ctx context.Context, d *DB, b wire.BatchBody, js []byte) error {
	c, err := toColumns(b)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO batches (gateway_id, first_seq, last_seq, readings, digest) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT DO NOTHING`, b.Gateway, int64(b.FirstSeq), int64(b.LastSeq), len(b.Readings), digest(js))
		if err != nil || tag.RowsAffected() == 0 {
			return fmt.Errorf("batch row: %v (%d rows)", err, tag.RowsAffected())
		}
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS incoming (LIKE readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`); err != nil {
			return err
		}
		cols := []string{"gateway_id", "seq", "source", "quantity", "value", "unit", "time", "clock"}
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"incoming"}, cols, pgx.CopyFromSlice(len(c.seq), func(i int) ([]any, error) {
			return []any{b.Gateway, c.seq[i], c.source[i], c.quantity[i], c.value[i], c.unit[i], c.time[i], c.clock[i]}, nil
		}))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO readings SELECT * FROM incoming ON CONFLICT DO NOTHING`)
		return err
	})
}
