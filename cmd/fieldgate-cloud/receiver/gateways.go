package receiver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Gateway is a gateway allowed to upload.
type Gateway struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Created  time.Time  `json:"created"`
	LastSeen *time.Time `json:"last_seen"` // nil: never sent
	Status   *Status    `json:"status"`    // nil: never reported
}

var (
	// ErrNoGateway means no gateway has that id.
	ErrNoGateway = errors.New("receiver: no such gateway")
	// ErrGatewayExists means a gateway with that id is there already.
	ErrGatewayExists = errors.New("receiver: gateway exists already")
	// ErrBadToken means no gateway has the token presented.
	ErrBadToken = errors.New("receiver: unknown token")
	// ErrOtherGateway means the token is another gateway's.
	ErrOtherGateway = errors.New("receiver: the token belongs to another gateway")
)

// gatewayID is the contract's pattern for a gateway id.
var gatewayID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// newToken returns a random bearer token and its hash.
func newToken() (string, []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	tok := "fgc_" + base64.RawURLEncoding.EncodeToString(b)
	return tok, hashToken(tok)
}

// hashToken is what is stored of a token: tokens are 256 random bits, so a
// plain SHA-256 is as safe to keep as a slow password hash and costs
// nothing per request.
func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// AddGateway registers gateway id and returns its token, which is kept
// only as a hash: this is the one time it can be shown.
func (d *DB) AddGateway(ctx context.Context, id, name string) (token string, err error) {
	if !gatewayID.MatchString(id) {
		return "", fmt.Errorf("receiver: gateway id %q: use 1 to 64 of A-Z a-z 0-9 . _ -", id)
	}
	tok, hash := newToken()
	_, err = d.pool.Exec(ctx, "INSERT INTO gateways (id, name, token_hash) VALUES ($1, $2, $3)", id, name, hash)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return "", fmt.Errorf("%w: %s", ErrGatewayExists, id)
	}
	if err != nil {
		return "", fmt.Errorf("receiver: add gateway: %w", err)
	}
	return tok, nil
}

// RotateGateway gives gateway id a new token; the old one stops working at
// once on every replica.
func (d *DB) RotateGateway(ctx context.Context, id string) (token string, err error) {
	tok, hash := newToken()
	tag, err := d.pool.Exec(ctx, "UPDATE gateways SET token_hash = $2 WHERE id = $1", id, hash)
	if err != nil {
		return "", fmt.Errorf("receiver: rotate token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return "", fmt.Errorf("%w: %s", ErrNoGateway, id)
	}
	return tok, nil
}

// RemoveGateway revokes gateway id; its readings and batches stay.
func (d *DB) RemoveGateway(ctx context.Context, id string) error {
	tag, err := d.pool.Exec(ctx, "DELETE FROM gateways WHERE id = $1", id)
	if err != nil {
		return fmt.Errorf("receiver: remove gateway: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %s", ErrNoGateway, id)
	}
	return nil
}

// Gateways lists every gateway by id.
func (d *DB) Gateways(ctx context.Context) ([]Gateway, error) {
	rows, err := d.pool.Query(ctx, `SELECT id, name, created, last_seen, status_at, coalesce(incarnation, ''), coalesce(backlog, 0),
		oldest_unsent, coalesce(clock, ''), coalesce(health, ''), coalesce(autonomy_seconds, 0), coalesce(version, '')
		FROM gateways ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("receiver: list gateways: %w", err)
	}
	var out []Gateway
	var g Gateway
	var st Status
	var at *time.Time
	_, err = pgx.ForEachRow(rows, []any{&g.ID, &g.Name, &g.Created, &g.LastSeen, &at, &st.Incarnation, &st.Backlog,
		&st.OldestUnsent, &st.Clock, &st.Health, &st.AutonomySeconds, &st.Version}, func() error {
		g.Status = nil
		if at != nil {
			s := st
			s.At = *at
			g.Status = &s
		}
		out = append(out, g)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("receiver: list gateways: %w", err)
	}
	return out, nil
}

// Authenticate checks that token is gateway id's: ErrBadToken when it is
// nobody's, ErrOtherGateway when it is another gateway's. The stored hash
// is compared in constant time.
func (d *DB) Authenticate(ctx context.Context, id, token string) error {
	hash := hashToken(token)
	return d.inTx(ctx, func(tx pgx.Tx) error {
		var stored []byte
		var lastSeen *time.Time
		err := tx.QueryRow(ctx, "SELECT token_hash, last_seen FROM gateways WHERE id = $1", id).Scan(&stored, &lastSeen)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if err == nil && subtle.ConstantTimeCompare(stored, hash) == 1 {
			if lastSeen == nil || time.Since(*lastSeen) > lastSeenEvery {
				// Coarse on purpose: one write per gateway per interval.
				_, err = tx.Exec(ctx, "UPDATE gateways SET last_seen = now() WHERE id = $1", id)
			}
			return err
		}
		var other string
		err = tx.QueryRow(ctx, "SELECT id FROM gateways WHERE token_hash = $1", hash).Scan(&other)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return ErrBadToken
		case err != nil:
			return err
		}
		return ErrOtherGateway
	})
}

// lastSeenEvery is how stale a gateway's last_seen may get.
const lastSeenEvery = 30 * time.Second
