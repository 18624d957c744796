package receiver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DBOptions are what every transaction of the receiver runs with, set in
// the transaction itself (SET LOCAL), so they hold through a connection
// pooler in transaction mode too. Zero fields take the defaults.
type DBOptions struct {
	// StatementTimeout ends a statement on the server, also when the
	// receiver has gone away meanwhile. Default 15 s; keep it below the
	// server's Options.Timeout.
	StatementTimeout time.Duration
	// LockTimeout ends a wait for a lock (another transaction's, a
	// migration's). Default 5 s.
	LockTimeout time.Duration
	// SynchronousCommit is PostgreSQL's synchronous_commit for batches:
	// "on" (the default: the commit is flushed to disk, and to a
	// synchronous standby if one is configured), "remote_write",
	// "remote_apply" (a synchronous standby has applied it) or "local".
	// "off" is refused: a 200 must never precede the commit's flush.
	SynchronousCommit string
	// Logger receives what migrations wait for. Default: discarded.
	Logger *slog.Logger
}

func (o *DBOptions) defaults() error {
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = 15 * time.Second
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch o.SynchronousCommit {
	case "":
		o.SynchronousCommit = "on"
	case "on", "remote_write", "remote_apply", "local":
	default:
		return fmt.Errorf("receiver: synchronous_commit %q: want on, remote_write, remote_apply or local (never off: a 200 must follow the commit's flush)", o.SynchronousCommit)
	}
	return nil
}

// DB is the receiver's database: a pool of connections to PostgreSQL.
type DB struct {
	pool *pgxpool.Pool
	opt  DBOptions
	id   string // names this process in the migration lease
}

// Open connects to the database at url, a libpq URL or key=value string
// (pool settings such as pool_max_conns are accepted, and
// default_query_exec_mode=exec for a pooler that cannot keep prepared
// statements). It does not migrate.
func Open(ctx context.Context, url string, o DBOptions) (*DB, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("receiver: database URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("receiver: database: %w", err)
	}
	host, _ := os.Hostname() // a name for people; the random part makes it unique
	return &DB{pool: pool, opt: o, id: fmt.Sprintf("%s/%d/%x", host, os.Getpid(), rand.Uint64())}, nil
}

// MaxConns is the most connections the pool opens.
func (d *DB) MaxConns() int { return int(d.pool.Config().MaxConns) }

// inTx runs fn in a transaction with the statement and lock timeouts and
// synchronous_commit of the options.
func (d *DB) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return d.tx(ctx, "", fn)
}

// inTxLocked is inTx holding the transaction-level advisory lock named by
// key (hashed to 64 bits; a collision only makes two keys take turns)
// before fn's first statement takes its snapshot. A transaction lock holds
// through a connection pooler in transaction mode.
func (d *DB) inTxLocked(ctx context.Context, key string, fn func(pgx.Tx) error) error {
	return d.tx(ctx, key, fn)
}

// txSettings sets a transaction's options; the lock, if any, is taken in
// the same round trip, after them (the lock timeout applies to it).
const txSettings = `SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true),
	set_config('synchronous_commit', $3, true)`

func (d *DB) tx(ctx context.Context, lock string, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		args := []any{millis(d.opt.StatementTimeout), millis(d.opt.LockTimeout), d.opt.SynchronousCommit}
		sql := txSettings
		if lock != "" {
			sql, args = sql+", pg_advisory_xact_lock(hashtextextended($4, 0))", append(args, lock)
		}
		if _, err := tx.Exec(ctx, sql, args...); err != nil {
			return err
		}
		return fn(tx)
	})
}

func millis(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// Ready checks that the database answers and takes writes: a primary
// that became a standby (after a failover the pool may still point at
// it) or a read-only session is not ready.
func (d *DB) Ready(ctx context.Context) error {
	var recovery bool
	var readOnly string
	err := d.pool.QueryRow(ctx, "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')").Scan(&recovery, &readOnly)
	switch {
	case err != nil:
		d.ResetIfStale(err)
		return err
	case recovery || readOnly == "on":
		d.pool.Reset() // the next connections may reach the new primary
		return ErrReadOnly
	}
	return nil
}

// ErrReadOnly means the database answers but does not take writes.
var ErrReadOnly = errors.New("receiver: the database is read-only (a standby, or after a failover)")

// ResetIfStale closes the pool's connections when err says they lead
// nowhere useful: a read-only transaction (the node was demoted), a
// server that shut down or ended the session (FATAL), or a broken
// connection. New ones are made on demand, to wherever the URL leads now.
func (d *DB) ResetIfStale(err error) {
	var pe *pgconn.PgError
	var oe *net.OpError
	switch {
	case errors.As(err, &pe):
		switch pe.Code {
		case "25006", "57P01", "57P02", "57P03": // read_only_sql_transaction, admin/crash shutdown, cannot connect now
		default:
			if pe.Severity != "FATAL" && pe.Severity != "PANIC" {
				return
			}
		}
	case errors.As(err, &oe): // refused, reset: the server went away
	default:
		return
	}
	d.pool.Reset()
}

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error { return d.pool.Ping(ctx) }

// Close closes every connection.
func (d *DB) Close() { d.pool.Close() }
