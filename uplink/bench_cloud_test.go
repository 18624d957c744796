package uplink

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"fieldgate/cmd/fieldgate-cloud/receiver"
	"fieldgate/cmd/fieldgate-cloud/receiver/pgtest"
)

// BenchmarkDrainInto drains the same backlog (FIELDGATE_TEST_BENCH_CLOUD_BACKLOG
// readings, default 200,000) into the in-memory sink and into the
// PostgreSQL receiver (fieldgate-cloud's handler over loopback HTTP, a
// fresh PostgreSQL with its default, durable settings), one after the
// other in one run, with the sender's defaults (500 readings a batch, 3 in
// flight, no rate cap). For PostgreSQL it also reports the bytes the
// readings table and its indexes take per reading, and the batches
// table's. Run with -benchtime 1x.
func BenchmarkDrainInto(b *testing.B) {
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("FIELDGATE_TEST_BENCH_CLOUD_BACKLOG")); err == nil && v > 0 {
		n = v
	}
	b.Run("sink", func(b *testing.B) {
		for range b.N {
			_, srv := cloud(b, "secret")
			drainInto(b, n, srv.URL, func(string) string { return "secret" })
		}
	})
	b.Run("postgres", func(b *testing.B) {
		for range b.N {
			pg := pgtest.Start(b)
			db, err := receiver.Open(context.Background(), pg.URL("postgres"), receiver.DBOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := db.Migrate(context.Background()); err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(receiver.NewServer(db, receiver.Options{}))
			drainInto(b, n, srv.URL, func(gw string) string {
				tok, err := db.AddGateway(context.Background(), gw, "")
				if err != nil {
					b.Fatal(err)
				}
				return tok
			})
			srv.Close()
			db.Close()
			reportTableBytes(b, pg.URL("postgres"), n)
		}
	})
}

// drainInto fills a store with n readings and drains it to url, with the
// token register gives the store's gateway.
func drainInto(b *testing.B, n int, url string, register func(gateway string) string) {
	b.StopTimer()
	st := testStore(b, 0)
	fillRealistic(b, st, n)
	o := Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Config: Config{URL: url, Token: register(st.GatewayID())}}
	b.StartTimer()
	start := time.Now()
	runUntilAcked(context.Background(), b, st, o, uint64(n))
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "readings/s")
}

// reportTableBytes reports what the readings (with their indexes) and the
// batches take in PostgreSQL per reading.
func reportTableBytes(b *testing.B, url string, n int) {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	var rows, readings, batches int64
	err = c.QueryRow(ctx, `SELECT (SELECT count(*) FROM readings),
		(SELECT sum(pg_total_relation_size(relid))::bigint FROM pg_partition_tree('readings')), pg_total_relation_size('batches')`).
		Scan(&rows, &readings, &batches)
	if err != nil {
		b.Fatal(err)
	}
	if rows != int64(n) {
		b.Fatalf("%d readings in PostgreSQL, want %d", rows, n)
	}
	b.ReportMetric(float64(readings)/float64(n), "pg-B/reading")
	b.ReportMetric(float64(batches)/float64(n), "pg-batches-B/reading")
}
