package cloud

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered step of the schema.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded steps in order; their file names start
// with 0001_, 0002_, … without gaps.
func migrations() []migration {
	names, _ := fs.Glob(migrationFiles, "migrations/*.sql") // a fixed, valid pattern
	var ms []migration
	for i, n := range names {
		base := path.Base(n)
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil || v != i+1 {
			panic("cloud: migration " + base + " is out of sequence")
		}
		b, _ := migrationFiles.ReadFile(n) // listed just above
		ms = append(ms, migration{v, strings.TrimSuffix(base, ".sql"), string(b)})
	}
	return ms
}

// SchemaVersion is the schema version this receiver writes.
func SchemaVersion() int { return len(migrations()) }

// ErrSchemaTooNew means the database was migrated by a newer receiver.
var ErrSchemaTooNew = errors.New("cloud: the database's schema is newer than this receiver")

// Migrate brings the schema to SchemaVersion, one transaction per step, and
// returns the versions before and after. Replicas starting together take
// turns (an advisory lock); a database at a newer version is refused.
func (d *DB) Migrate(ctx context.Context) (from, to int, err error) {
	return d.migrateTo(ctx, SchemaVersion())
}

// migrationLock is the advisory lock key migrations hold ("fgmigr").
const migrationLock int64 = 0x66676d69677200

func (d *DB) migrateTo(ctx context.Context, target int) (from, to int, err error) {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Release()
	_, err = conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock)
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && (pe.Code == "42883" || pe.Code == "0A000"):
		// A PostgreSQL-compatible database without advisory locks
		// (undefined function, feature not supported): migrations then
		// run from one place (docs/cloud.md).
	case err != nil:
		return 0, 0, fmt.Errorf("cloud: migration lock: %w", err)
	default:
		defer func() {
			// Released with the session anyway, should this fail.
			_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock)
		}()
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS fieldgate_schema (
		version integer PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, 0, fmt.Errorf("cloud: schema table: %w", err)
	}
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM fieldgate_schema").Scan(&from); err != nil {
		return 0, 0, fmt.Errorf("cloud: schema version: %w", err)
	}
	if from > SchemaVersion() {
		return from, from, fmt.Errorf("%w: database at version %d, this receiver knows %d; upgrade the receiver", ErrSchemaTooNew, from, SchemaVersion())
	}
	for _, m := range migrations()[from:target] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO fieldgate_schema (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return from, m.version - 1, fmt.Errorf("cloud: migration %s: %w", m.name, err)
		}
	}
	return from, max(from, target), nil
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
