package receiver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// readings is partitioned by range of received, one partition per calendar
// month (UTC) named readings_YYYY_MM, after readings_legacy (what an older
// schema held, if anything) and beside readings_default (what no month
// takes, so that an insert never fails for want of a partition).

// PartitionsAhead is how many months EnsurePartitions creates beyond the
// current one.
const PartitionsAhead = 2

// Partition is one partition of readings.
type Partition struct {
	Name string
	// From and To bound the received times it holds; From is zero for the
	// first (legacy) partition, both are zero for the default one.
	From, To time.Time
	// Bytes is its size on disk, indexes included.
	Bytes int64
}

// Default reports whether p is the default partition.
func (p Partition) Default() bool { return p.To.IsZero() }

func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// MonthsBack is the start of the month n months before now's (UTC): the
// cutoff that keeps the current month and the n before it.
func MonthsBack(now time.Time, n int) time.Time { return monthStart(now).AddDate(0, -n, 0) }

func monthName(m time.Time) string {
	return fmt.Sprintf("readings_%04d_%02d", m.Year(), int(m.Month()))
}

// EnsurePartitions creates the monthly partitions of readings from now's
// month through PartitionsAhead months after it, those not there yet, and
// returns their names. Creating one waits for the inserts under way (a
// moment's lock, bounded by the lock timeout). A month whose readings
// already went to the default partition cannot be created; it is
// reported, and its readings stay where they are.
func (d *DB) EnsurePartitions(ctx context.Context, now time.Time) ([]string, error) {
	var legacyUntil time.Time
	if err := d.pool.QueryRow(ctx, "SELECT coalesce(legacy_until, 'epoch') FROM readings_partitioning").Scan(&legacyUntil); err != nil {
		return nil, fmt.Errorf("receiver: partitions: %w", err)
	}
	var created []string
	var errs []error
	for m, last := monthStart(now), monthStart(now).AddDate(0, PartitionsAhead, 0); !m.After(last); m = m.AddDate(0, 1, 0) {
		if m.Before(legacyUntil) {
			continue // the legacy partition holds it
		}
		name := monthName(m)
		var exists bool
		err := d.inTx(ctx, func(tx pgx.Tx) error {
			if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", name).Scan(&exists); err != nil || exists {
				return err
			}
			_, err := tx.Exec(ctx, fmt.Sprintf("CREATE TABLE %s PARTITION OF readings FOR VALUES FROM ('%s') TO ('%s')",
				name, m.Format(time.RFC3339), m.AddDate(0, 1, 0).Format(time.RFC3339)))
			return err
		})
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("receiver: partition %s: %w", name, err))
		case !exists:
			created = append(created, name)
		}
	}
	return created, errors.Join(errs...)
}

// Partitions lists the partitions of readings that the receiver made,
// oldest first, the default one last.
func (d *DB) Partitions(ctx context.Context) ([]Partition, error) {
	rows, err := d.pool.Query(ctx, `SELECT c.relname, c.relpartbound IS NOT NULL AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT',
			pg_total_relation_size(c.oid), coalesce(p.legacy_until, 'epoch')
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid, readings_partitioning p
		WHERE i.inhparent = 'readings'::regclass ORDER BY c.relname`)
	if err != nil {
		return nil, fmt.Errorf("receiver: partitions: %w", err)
	}
	var ps []Partition
	var dflt *Partition
	for rows.Next() {
		var p Partition
		var isDefault bool
		var legacyUntil time.Time
		if err := rows.Scan(&p.Name, &isDefault, &p.Bytes, &legacyUntil); err != nil {
			return nil, err
		}
		var m time.Time
		switch {
		case isDefault:
			dflt = &p
			continue
		case p.Name == "readings_legacy":
			p.To = legacyUntil
		case monthOf(p.Name, &m):
			p.From, p.To = m, m.AddDate(0, 1, 0)
		default:
			continue // not one of ours: never dropped
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if dflt != nil {
		ps = append(ps, *dflt)
	}
	return ps, nil
}

// monthOf parses a monthly partition's name into the month it holds.
func monthOf(name string, m *time.Time) bool {
	var y, mo int
	if _, err := fmt.Sscanf(name, "readings_%04d_%02d", &y, &mo); err != nil || mo < 1 || mo > 12 {
		return false
	}
	*m = time.Date(y, time.Month(mo), 1, 0, 0, 0, 0, time.UTC)
	return monthName(*m) == name
}

// DropBefore drops the partitions of readings whose every reading was
// received before cutoff, whole (the month that holds cutoff stays), and
// the batch records of the same time, and returns the partitions dropped.
// Each drop is a moment's lock, bounded by the lock timeout.
func (d *DB) DropBefore(ctx context.Context, cutoff time.Time) ([]Partition, error) {
	ps, err := d.Partitions(ctx)
	if err != nil {
		return nil, err
	}
	var dropped []Partition
	for _, p := range ps {
		if p.Default() || p.To.After(cutoff) {
			continue
		}
		err := d.inTx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "DROP TABLE "+pgx.Identifier{p.Name}.Sanitize()); err != nil {
				return err
			}
			// A batch's row and its readings share their received time
			// (one transaction's now()).
			_, err := tx.Exec(ctx, "DELETE FROM batches WHERE received < $1", p.To)
			return err
		})
		if err != nil {
			return dropped, fmt.Errorf("receiver: drop partition %s: %w", p.Name, err)
		}
		dropped = append(dropped, p)
	}
	return dropped, nil
}
