package receiver

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"fieldgate/cmd/fieldgate-cloud/receiver/pgtest"
)

// TestThroughPgBouncer runs the receiver through PgBouncer in transaction
// mode with two server connections, as docs/cloud.md says to
// (default_query_exec_mode=exec): four replicas migrate at once, two store
// the same batches at once, replays are answered alike, a rotated token
// works at once and the old one not, and every batch's settings hold.
func TestThroughPgBouncer(t *testing.T) {
	direct := pgtest.NewDB(t)
	cfg, err := pgx.ParseConfig(direct)
	if err != nil {
		t.Fatal(err)
	}
	url := pgtest.Shared().Bouncer(t, cfg.Database, 2) + " default_query_exec_mode=exec"

	open := func() *DB {
		t.Helper()
		db, err := Open(t.Context(), url, DBOptions{LockTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		return db
	}
	dbs := []*DB{open(), open(), open(), open()}
	var wg sync.WaitGroup
	for _, db := range dbs {
		wg.Go(func() {
			if _, _, err := db.Migrate(t.Context()); err != nil {
				t.Errorf("migrate through the pooler: %v", err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if v, err := dbs[0].Version(t.Context()); err != nil || v != SchemaVersion() {
		t.Fatalf("version %d (%v), want %d", v, err, SchemaVersion())
	}
	tok, err := dbs[0].AddGateway(t.Context(), "gw-a", "")
	if err != nil {
		t.Fatal(err)
	}
	replicas := []*Server{NewServer(dbs[0], Options{}), NewServer(dbs[1], Options{})}
	answers := make(chan answer, 200)
	for i := range 8 {
		wg.Go(func() {
			for n := range 25 {
				answers <- put(t, replicas[i%2], tok, batch("gw-a", uint64(n*10+1), float64(n), 1, 2), nil)
			}
		})
	}
	wg.Wait()
	close(answers)
	for a := range answers {
		if a.status != http.StatusOK || strings.TrimSpace(a.body) != `{"accepted":3}` {
			t.Fatalf("answer through the pooler: %+v", a)
		}
	}
	var n int
	if err := dbs[2].pool.QueryRow(t.Context(), "SELECT count(*) FROM readings").Scan(&n); err != nil || n != 75 {
		t.Errorf("%d readings (%v), want 75", n, err)
	}
	newTok, err := dbs[3].RotateGateway(t.Context(), "gw-a")
	if err != nil {
		t.Fatal(err)
	}
	if a := put(t, replicas[0], tok, batch("gw-a", 1000, 1), nil); a.status != http.StatusUnauthorized {
		t.Errorf("the rotated-out token: %+v, want 401", a)
	}
	if a := put(t, replicas[1], newTok, batch("gw-a", 1000, 1), nil); a.status != http.StatusOK {
		t.Errorf("the new token: %+v", a)
	}
	var lt, sc string
	err = dbs[0].inTx(t.Context(), func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), "SELECT current_setting('lock_timeout'), current_setting('synchronous_commit')").Scan(&lt, &sc)
	})
	if err != nil || lt != "2s" || sc != "on" {
		t.Errorf("a batch's settings through the pooler: lock_timeout %q, synchronous_commit %q (%v)", lt, sc, err)
	}
}
