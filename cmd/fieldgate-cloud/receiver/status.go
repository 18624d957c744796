package receiver

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"fieldgate/uplink/wire"
)

// Status is a gateway's last reported status (see wire.StatusBody).
type Status struct {
	At              time.Time  `json:"at"`
	Incarnation     string     `json:"incarnation,omitempty"`
	Backlog         int64      `json:"backlog"`
	OldestUnsent    *time.Time `json:"oldest_unsent,omitempty"`
	Clock           string     `json:"clock"`
	Health          string     `json:"health"`
	AutonomySeconds float64    `json:"autonomy_seconds"`
	Version         string     `json:"version"`
}

// Lag is how far behind the cloud is with the gateway's readings at now:
// the age of the oldest reading not yet acknowledged, as reported.
func (s Status) Lag(now time.Time) time.Duration {
	if s.Backlog == 0 || s.OldestUnsent == nil {
		return 0
	}
	return max(0, now.Sub(*s.OldestUnsent))
}

// StoreStatus keeps gateway b.Gateway's status, unless a newer one is
// stored (reports may arrive out of order through several replicas).
func (d *DB) StoreStatus(ctx context.Context, b wire.StatusBody) error {
	at, _ := time.Parse(time.RFC3339Nano, b.At) // checked by b.Check
	var oldest *time.Time
	if t, err := time.Parse(time.RFC3339Nano, b.OldestUnsent); err == nil {
		oldest = &t
	}
	return d.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE gateways SET status_at = $2, incarnation = $3, backlog = $4, oldest_unsent = $5,
			clock = $6, health = $7, autonomy_seconds = $8, version = $9
			WHERE id = $1 AND (status_at IS NULL OR status_at < $2)`,
			b.Gateway, at, b.Incarnation, int64(min(b.Backlog, 1<<62)), oldest, b.Clock, b.Health, b.AutonomySeconds, b.Version)
		if err != nil {
			return fmt.Errorf("receiver: store a gateway's status: %w", err)
		}
		return nil
	})
}

// Fleet is the fleet at a glance, for /metrics.
type Fleet struct {
	// Gateways by state: "current" (reported, not behind), "behind" (its
	// oldest unsent reading older than Behind), "silent" (not seen for
	// Silent), "unreported" (no status yet).
	States map[string]int
	// MaxLag is the largest lag of a gateway that is not silent; Backlog
	// the readings all of them wait to send.
	MaxLag  time.Duration
	Backlog int64
}

// Fleet thresholds: a gateway is behind past Behind of lag, silent past
// Silent without a request.
const (
	Behind = 10 * time.Minute
	Silent = 15 * time.Minute
)

// Fleet sums up every gateway's status at now.
func (d *DB) Fleet(ctx context.Context, now time.Time) (Fleet, error) {
	gws, err := d.Gateways(ctx)
	if err != nil {
		return Fleet{}, err
	}
	f := Fleet{States: map[string]int{"current": 0, "behind": 0, "silent": 0, "unreported": 0}}
	for _, g := range gws {
		f.States[g.State(now)]++
		if g.Status != nil && g.State(now) != "silent" {
			f.MaxLag = max(f.MaxLag, g.Status.Lag(now))
			f.Backlog += g.Status.Backlog
		}
	}
	return f, nil
}

// State is the gateway's state at now: see Fleet.States.
func (g Gateway) State(now time.Time) string {
	switch {
	case g.LastSeen == nil || now.Sub(*g.LastSeen) > Silent:
		return "silent"
	case g.Status == nil:
		return "unreported"
	case g.Status.Lag(now) > Behind:
		return "behind"
	}
	return "current"
}
