package receiver

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldgate/cmd/fieldgate-cloud/receiver/pgtest"
)

// TestMigratesFromTheFirstSchema opens a database left at schema version 1
// with a gateway and its readings in it: the receiver brings it to the
// current version (readings partitioned, the old table its first
// partition) and everything keeps working.
func TestMigratesFromTheFirstSchema(t *testing.T) {
	r := newReceiverAt(t, 1)
	if from, to, err := r.db.Migrate(t.Context()); err != nil || from != 1 || to != SchemaVersion() {
		t.Fatalf("migrate: from %d to %d, %v; want 1 to %d", from, to, err, SchemaVersion())
	}
	if a := r.put(r.tokens["gw-a"], batch("gw-a", 1, 1, 2), nil); a.status != http.StatusOK {
		t.Fatalf("replay of the batch stored under version 1: %+v", a)
	}
	if a := r.put(r.tokens["gw-a"], batch("gw-a", 3, 3), nil); a.status != http.StatusOK {
		t.Fatalf("a new batch: %+v", a)
	}
	if n := r.count("SELECT count(*) FROM readings WHERE gateway_id = 'gw-a'"); n != 3 {
		t.Errorf("%d readings, want 3", n)
	}
	if n := r.count("SELECT count(*) FROM pg_indexes WHERE indexname = 'readings_series'"); n != 1 {
		t.Error("the series index was not created")
	}
	// readings is partitioned; the old table is its first partition.
	if n := r.count("SELECT count(*) FROM pg_partitioned_table WHERE partrelid = 'readings'::regclass"); n != 1 {
		t.Error("readings is not partitioned")
	}
	if n := r.count("SELECT count(*) FROM readings_legacy"); n != 3 {
		t.Errorf("%d readings in the first partition, want the 2 stored before and the one since", n)
	}
	if a := r.put(r.tokens["gw-a"], batch("gw-a", 2, 3, 7), nil); a.status != http.StatusConflict {
		t.Errorf("reading 3 again with another value: %+v, want 409", a)
	}
	if from, to, err := r.db.Migrate(t.Context()); err != nil || from != to {
		t.Errorf("a second migration: from %d to %d, %v; want nothing to do", from, to, err)
	}
}

// newReceiverAt is a receiver whose database was built at schema version v
// by an older receiver, with gateway gw-a and its batch 1-2 in it.
func newReceiverAt(t *testing.T, v int) *receiver {
	t.Helper()
	r := newReceiver(t, Options{})
	ctx := t.Context()
	if _, err := r.db.pool.Exec(ctx, "DROP TABLE readings, batches, gateways, fieldgate_schema, readings_partitioning"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.db.migrateTo(ctx, v); err != nil {
		t.Fatal(err)
	}
	tok, hash := newToken()
	r.tokens["gw-a"] = tok
	b := batch("gw-a", 1, 1, 2)
	_, err := r.db.pool.Exec(ctx, "INSERT INTO gateways (id, token_hash) VALUES ('gw-a', $1)", hash)
	if err == nil {
		_, err = r.db.pool.Exec(ctx, "INSERT INTO batches VALUES ('gw-a', 1, 2, 2, $1, now())", digest(mustJSON(t, b)))
	}
	if err == nil {
		_, err = r.db.pool.Exec(ctx, `INSERT INTO readings (gateway_id, seq, source, quantity, value, unit, time, clock)
			VALUES ('gw-a', 1, 'esp32-a', 'temperature', 1, 'Cel', '2026-11-22T10:00:00.5Z', 'synced'),
			       ('gw-a', 2, 'esp32-a', 'temperature', 2, 'Cel', '2026-11-22T10:00:01.5Z', 'synced')`)
	}
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRefusesANewerSchema(t *testing.T) {
	r := newReceiver(t, Options{})
	if _, err := r.db.pool.Exec(t.Context(), "INSERT INTO fieldgate_schema (version, name) VALUES ($1, 'from the future')", SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.db.Migrate(t.Context()); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("migrate a newer schema: %v, want ErrSchemaTooNew", err)
	}
}

// TestReplicasMigrateTogether starts several receivers on one empty
// database at once: they take turns, and the schema is built once.
func TestReplicasMigrateTogether(t *testing.T) {
	url := pgtest.NewDB(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			db, err := Open(t.Context(), url, DBOptions{})
			if err == nil {
				_, _, err = db.Migrate(t.Context())
				db.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	db, err := Open(t.Context(), url, DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var steps int
	if err := db.pool.QueryRow(t.Context(), "SELECT count(*) FROM fieldgate_schema").Scan(&steps); err != nil || steps != SchemaVersion() {
		t.Errorf("%d migration rows (%v), want %d", steps, err, SchemaVersion())
	}
}

// TestMigrationGivesWayToQueries migrates a database at version 4 (the
// identity indexes built) while a long query reads the readings table:
// the step that changes its key needs a moment's exclusive lock. It waits
// at most the lock timeout at a time, giving way in between, so batches
// keep being stored meanwhile instead of queueing behind it; once the
// query ends, it completes.
func TestMigrationGivesWayToQueries(t *testing.T) {
	url := pgtest.NewDB(t)
	var log bytes.Buffer
	var mu sync.Mutex
	db, err := Open(t.Context(), url, DBOptions{LockTimeout: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &log}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, _, err := db.migrateTo(t.Context(), 4); err != nil {
		t.Fatal(err)
	}
	reader, err := db.pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reader.Exec(t.Context(), "SELECT count(*) FROM readings"); err != nil { // holds its lock until the end
		t.Fatal(err)
	}
	migrated := make(chan error, 1)
	go func() { _, _, err := db.Migrate(t.Context()); migrated <- err }()
	waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return strings.Contains(log.String(), "migration waits") })
	// Meanwhile ingest goes on: a batch's insert is not queued behind the
	// waiting ALTER for more than its lock timeout.
	tok, hash := newToken()
	if _, err := db.pool.Exec(t.Context(), "INSERT INTO gateways (id, token_hash) VALUES ('gw-a', $1)", hash); err != nil {
		t.Fatal(err)
	}
	srv := NewServer(db, Options{})
	for i := range 3 {
		if a := put(t, srv, tok, batch("gw-a", uint64(i*2+1), 1, 2), nil); a.status != http.StatusOK {
			t.Fatalf("batch %d during the migration: %+v", i, a)
		}
	}
	if err := reader.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-migrated; err != nil {
		t.Fatal(err)
	}
	if v, err := db.Version(t.Context()); err != nil || v != SchemaVersion() {
		t.Errorf("version %d (%v) after the migration, want %d", v, err, SchemaVersion())
	}
}

// TestMigrationTakesOverADeadBuild: a replica died while it built an
// index CONCURRENTLY, leaving an invalid index and its lease. Once the
// lease runs out, the next replica drops the invalid index, builds it
// again and records the step.
func TestMigrationTakesOverADeadBuild(t *testing.T) {
	url := pgtest.NewDB(t)
	db, err := Open(t.Context(), url, DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, _, err := db.migrateTo(t.Context(), 3); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		"CREATE UNIQUE INDEX readings_identity ON readings (gateway_id, incarnation, seq)",
		"UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'readings_identity'::regclass", // what a failed build leaves
		"INSERT INTO fieldgate_schema_lease (owner, until) VALUES ('a dead replica', now() - interval '1 second')",
	} {
		if _, err := db.pool.Exec(t.Context(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if _, _, err := db.migrateTo(t.Context(), 5); err != nil { // the step that makes it the key
		t.Fatal(err)
	}
	var leases int
	if err := db.pool.QueryRow(t.Context(), "SELECT count(*) FROM fieldgate_schema_lease").Scan(&leases); err != nil || leases != 0 {
		t.Errorf("%d leases left (%v)", leases, err)
	}
	var valid bool // readings_identity became the primary key's index
	if err := db.pool.QueryRow(t.Context(), "SELECT indisvalid FROM pg_index WHERE indexrelid = 'readings_pkey'::regclass").Scan(&valid); err != nil || !valid {
		t.Errorf("readings_pkey valid %v (%v)", valid, err)
	}
}
