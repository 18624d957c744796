package cloud

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// DB is the receiver's database: a pool of connections to PostgreSQL.
type DB struct {
	pool *pgxpool.Pool
}

// Open connects to the database at url, a libpq URL or key=value string
// (pool settings such as pool_max_conns are accepted). It does not migrate.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("cloud: database URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("cloud: database: %w", err)
	}
	return &DB{pool: pool}, nil
}

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error { return d.pool.Ping(ctx) }

// Close closes every connection.
func (d *DB) Close() { d.pool.Close() }
