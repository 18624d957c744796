package receiver

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// concurrentIndex matches the one statement a step outside a transaction
// may hold, and names its index.
var concurrentIndex = regexp.MustCompile(`(?is)^CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+IF\s+NOT\s+EXISTS\s+(\w+)\s+ON\s`)

// A step outside a transaction cannot hold the migration's transaction
// lock while it runs, and a session lock does not hold through a pooler in
// transaction mode; so the replica that runs it holds a lease, a row that
// names it and ends at a time it keeps pushing forward. Others wait for
// the step to be recorded; a lease whose holder died runs out, and the
// next replica takes the step over.
const (
	leaseFor   = 30 * time.Second
	leaseRenew = 10 * time.Second
)

// errLeased says another replica holds the lease: wait and look again.
var errLeased = errors.New("receiver: another replica builds the schema's indexes")

// takeLease takes the lease for owner in tx, unless another owner's runs.
func takeLease(ctx context.Context, tx pgx.Tx, owner string) error {
	var holder string
	err := tx.QueryRow(ctx, "SELECT owner FROM fieldgate_schema_lease WHERE until > now()").Scan(&holder)
	switch {
	case err == nil && holder != owner:
		return fmt.Errorf("%w (%s)", errLeased, holder)
	case err != nil && !errors.Is(err, pgx.ErrNoRows):
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO fieldgate_schema_lease (owner, until) VALUES ($1, now() + $2::interval)
		ON CONFLICT (only_one) DO UPDATE SET owner = excluded.owner, until = excluded.until`, owner, leaseFor.String())
	return err
}

// dropLease ends owner's lease in tx.
func dropLease(ctx context.Context, tx pgx.Tx, owner string) error {
	_, err := tx.Exec(ctx, "DELETE FROM fieldgate_schema_lease WHERE owner = $1", owner)
	return err
}

// underLease runs fn while pushing this replica's lease forward.
func (d *DB) underLease(ctx context.Context, fn func() error) error {
	done := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		for {
			select {
			case <-done:
				return
			case <-time.After(leaseRenew):
			}
			_, err := d.pool.Exec(ctx, "UPDATE fieldgate_schema_lease SET until = now() + $2::interval WHERE owner = $1", d.id, leaseFor.String())
			if err != nil {
				d.opt.Logger.Warn("migration cannot renew its lease", "err", err)
			}
		}
	}()
	err := fn()
	close(done)
	<-renewed
	return err
}

// buildIndexes runs a step outside a transaction: each of its statements
// builds an index CONCURRENTLY, and returns once every one is valid. A
// build that failed before (leaving an invalid index, which IF NOT EXISTS
// would take for done) is dropped and started again; one still running
// from a replica that died is waited for.
func (d *DB) buildIndexes(ctx context.Context, m migration) error {
	for _, stmt := range strings.Split(strings.TrimPrefix(m.sql, noTxMarker), ";") {
		stmt = strings.TrimSpace(stripComments(stmt))
		if stmt == "" {
			continue
		}
		match := concurrentIndex.FindStringSubmatch(stmt)
		if match == nil {
			return fmt.Errorf("receiver: migration %s: outside a transaction only CREATE INDEX CONCURRENTLY IF NOT EXISTS may run: %q", m.name, stmt)
		}
		if err := d.buildIndex(ctx, match[1], stmt); err != nil {
			return fmt.Errorf("receiver: migration %s: index %s: %w", m.name, match[1], err)
		}
	}
	return nil
}

func (d *DB) buildIndex(ctx context.Context, name, stmt string) error {
	for logged := false; ; {
		if _, err := d.pool.Exec(ctx, stmt); err != nil {
			return err
		}
		var valid, building bool
		err := d.pool.QueryRow(ctx, `SELECT coalesce((SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)), false),
			EXISTS (SELECT 1 FROM pg_stat_progress_create_index WHERE index_relid = to_regclass($1))`, name).Scan(&valid, &building)
		switch {
		case err != nil:
			return err
		case valid:
			return nil
		case building:
			if !logged {
				d.opt.Logger.Info("migration waits for an index a build still running makes", "index", name)
				logged = true
			}
		default: // a failed build's leftover
			d.opt.Logger.Warn("migration drops an index a failed build left invalid, and builds it again", "index", name)
			if _, err := d.pool.Exec(ctx, "DROP INDEX CONCURRENTLY IF EXISTS "+name); err != nil {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), fmt.Errorf("index %s still being built", name))
		case <-time.After(migrateWait):
		}
	}
}

// stripComments drops "--" comment lines.
func stripComments(sql string) string {
	var out []string
	for _, l := range strings.Split(sql, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
