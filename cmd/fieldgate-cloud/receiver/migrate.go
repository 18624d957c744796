package receiver

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered step of the schema. A step whose file starts
// with noTxMarker runs outside a transaction, one statement at a time:
// each a CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS.
type migration struct {
	version int
	name    string
	sql     string
	noTx    bool
}

const noTxMarker = "-- fieldgate: no transaction\n"

// migrations returns the embedded steps in order; their file names start
// with 0001_, 0002_, … without gaps.
func migrations() []migration {
	names, _ := fs.Glob(migrationFiles, "migrations/*.sql") // a fixed, valid pattern
	var ms []migration
	for i, n := range names {
		base := path.Base(n)
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil || v != i+1 {
			panic("receiver: migration " + base + " is out of sequence")
		}
		b, _ := migrationFiles.ReadFile(n) // listed just above
		ms = append(ms, migration{v, strings.TrimSuffix(base, ".sql"), string(b), strings.HasPrefix(string(b), noTxMarker)})
	}
	return ms
}

// SchemaVersion is the schema version this receiver writes.
func SchemaVersion() int { return len(migrations()) }

// ErrSchemaTooNew means the database was migrated by a newer receiver.
var ErrSchemaTooNew = errors.New("receiver: the database's schema is newer than this receiver")

// Migrate brings the schema to SchemaVersion and returns the versions
// before and after. Each step runs in a transaction of its own that first
// takes a transaction-level advisory lock, so replicas starting together
// take turns, also through a connection pooler in transaction mode; a
// step waiting longer than the lock timeout for that lock or for a table
// (busy with queries) gives up its place and tries again, logging that it
// waits, so it never queues ingest behind it for long. Indexes on existing
// tables are built CONCURRENTLY, outside a transaction. A database at a
// newer version is refused. Then the partitions of readings for this
// month and the next are made (see EnsurePartitions).
func (d *DB) Migrate(ctx context.Context) (from, to int, err error) {
	if from, to, err = d.migrateTo(ctx, SchemaVersion()); err != nil {
		return from, to, err
	}
	if _, err := d.EnsurePartitions(ctx, time.Now()); err != nil {
		d.opt.Logger.Warn("readings partitions", "err", err) // the default partition takes the readings meanwhile
	}
	return from, to, nil
}

// migrationLock is the advisory lock key migrations hold ("fgmigr").
const migrationLock int64 = 0x66676d69677200

// migrateWait is how long a migration step waits before it tries again
// after its lock timeout.
const migrateWait = time.Second

func (d *DB) migrateTo(ctx context.Context, target int) (from, to int, err error) {
	from = -1
	for waited := 0; ; {
		v, err := d.migrateStep(ctx, target)
		if from < 0 && (err == nil || errors.Is(err, errStepDone)) {
			from = v
		}
		switch {
		case errors.Is(err, errStepDone):
			continue
		case isLockTimeout(err), errors.Is(err, errLeased):
			if waited++; waited == 1 || waited%30 == 0 {
				d.opt.Logger.Warn("migration waits: another replica migrates, or queries hold a table it changes", "waited", time.Duration(waited)*migrateWait, "err", err)
			}
			select {
			case <-ctx.Done():
				return max(from, 0), v, ctx.Err()
			case <-time.After(migrateWait):
			}
			continue
		case err != nil:
			return max(from, 0), v, err
		}
		return from, max(from, target, v), nil
	}
}

// errStepDone says a step was applied: the next may follow.
var errStepDone = errors.New("receiver: migration step applied")

// migrateStep applies the schema's next step below target, if any, and
// returns the version found before it: errStepDone once it applied one,
// nil when the schema is at target or beyond.
func (d *DB) migrateStep(ctx context.Context, target int) (int, error) {
	var v int
	var next *migration
	err := d.lockedTx(ctx, func(tx pgx.Tx) error {
		var err error
		if v, err = schemaVersion(ctx, tx); err != nil || v >= target {
			return err
		}
		m := migrations()[v]
		if m.noTx {
			next = &m // built outside, under a lease taken here, then recorded
			return takeLease(ctx, tx, d.id)
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("receiver: migration %s: %w", m.name, err)
		}
		return recordStep(ctx, tx, m)
	})
	switch {
	case err != nil:
		return v, err
	case v > SchemaVersion():
		return v, fmt.Errorf("%w: database at version %d, this receiver knows %d; upgrade the receiver", ErrSchemaTooNew, v, SchemaVersion())
	case v >= target:
		return v, nil
	case next == nil:
		return v, errStepDone
	}
	if err := d.underLease(ctx, func() error { return d.buildIndexes(ctx, *next) }); err != nil {
		return v, err
	}
	err = d.lockedTx(ctx, func(tx pgx.Tx) error {
		if err := recordStep(ctx, tx, *next); err != nil {
			return err
		}
		return dropLease(ctx, tx, d.id)
	})
	if err != nil {
		return v, err
	}
	return v, errStepDone
}

// lockedTx runs fn in a transaction that holds the migration lock, with
// the options' lock timeout. A database without advisory locks (a
// PostgreSQL-compatible one) runs it without: migrations then run from
// one place (docs/cloud.md).
func (d *DB) lockedTx(ctx context.Context, fn func(pgx.Tx) error) error {
	withLock := true
	for {
		err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT set_config('lock_timeout', $1, true)", millis(d.opt.LockTimeout)); err != nil {
				return err
			}
			if withLock {
				if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLock); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS fieldgate_schema (
				version integer PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL DEFAULT now());
				CREATE TABLE IF NOT EXISTS fieldgate_schema_lease (
				only_one boolean PRIMARY KEY DEFAULT true CHECK (only_one), owner text NOT NULL, until timestamptz NOT NULL)`); err != nil {
				return fmt.Errorf("receiver: schema table: %w", err)
			}
			return fn(tx)
		})
		var pe *pgconn.PgError
		if withLock && errors.As(err, &pe) && (pe.Code == "42883" || pe.Code == "0A000") { // undefined function, not supported
			withLock = false
			continue
		}
		return err
	}
}

func schemaVersion(ctx context.Context, tx pgx.Tx) (int, error) {
	var v int
	err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM fieldgate_schema").Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("receiver: schema version: %w", err)
	}
	return v, nil
}

func recordStep(ctx context.Context, tx pgx.Tx, m migration) error {
	_, err := tx.Exec(ctx, "INSERT INTO fieldgate_schema (version, name) VALUES ($1, $2)", m.version, m.name)
	return err
}

// isLockTimeout reports whether err is PostgreSQL's lock timeout.
func isLockTimeout(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "55P03" // lock_not_available
}

// Version returns the database's schema version (0: never migrated).
func (d *DB) Version(ctx context.Context) (int, error) {
	var v int
	err := d.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM fieldgate_schema`).Scan(&v)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table
		return 0, nil
	}
	return v, err
}
