package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"fieldgate/store"
	"fieldgate/uplink"
)

type statusBody struct {
	GatewayID string         `json:"gateway_id"`
	Name      string         `json:"name,omitempty"`
	Version   string         `json:"version"`
	Now       time.Time      `json:"now"`
	StartedAt time.Time      `json:"started_at"`
	Uptime    float64        `json:"uptime_seconds"`
	Clock     string         `json:"clock"`
	ClockFix  clockRepair    `json:"clock_repair"`
	Health    health         `json:"health"`
	Store     storeBody      `json:"store"`
	Uplink    uplinkBody     `json:"uplink"`
	Autonomy  autonomyBody   `json:"autonomy"`
	Broker    brokerBody     `json:"broker"`
	Sensors   map[string]int `json:"sensors"`
}

// clockRepair reports readings taken before the clock synced.
type clockRepair struct {
	Pending     int       `json:"pending"`
	Repaired    uint64    `json:"repaired"`
	Stranded    uint64    `json:"stranded"`
	SyncedAt    time.Time `json:"synced_at,omitzero"`
	StepSeconds float64   `json:"step_seconds"`
}

// health is the overall verdict with its reasons in words.
type health struct {
	State   string   `json:"state"` // ok, degraded or failing
	Reasons []string `json:"reasons"`
}

func (h *health) degrade(reason string) {
	if h.State == "ok" {
		h.State = "degraded"
	}
	h.Reasons = append(h.Reasons, reason)
}

func (h *health) failing(reason string) {
	h.State = "failing"
	h.Reasons = append(h.Reasons, reason)
}

type storeBody struct {
	Path         string            `json:"path"`
	Readings     int64             `json:"readings"`
	LastSeq      uint64            `json:"last_seq"`
	FileBytes    int64             `json:"file_bytes"`
	UsedBytes    int64             `json:"used_bytes"`
	MaxBytes     int64             `json:"max_bytes"`
	Queued       int               `json:"queued"`
	LastCommit   time.Time         `json:"last_commit,omitzero"`
	Error        string            `json:"error,omitempty"`
	FailingSince time.Time         `json:"failing_since,omitzero"`
	Dropped      map[string]uint64 `json:"dropped"`
	Retired      uint64            `json:"retention_deleted"`
	HeadReadings int               `json:"head_readings"`
	LogBytes     int64             `json:"log_bytes"`
	Checkpoints  uint64            `json:"checkpoints"`
	LastCkpt     time.Time         `json:"last_checkpoint,omitzero"`
	CkptError    string            `json:"checkpoint_error,omitempty"`
	Log          logBody           `json:"log"`
}

// logBody is what failed writes, power cuts and a wearing card did to the
// write-ahead log.
type logBody struct {
	State        string            `json:"state"` // ok, recovering or failed
	Error        string            `json:"error,omitempty"`
	Torn         uint64            `json:"torn"`
	Corrupt      uint64            `json:"corrupt"`
	LostReadings uint64            `json:"lost_readings"`
	Recoveries   int               `json:"recoveries"`
	Damage       []store.LogDamage `json:"damage"`
	Quarantined  []string          `json:"quarantined"`
}

// logState reports the write-ahead log and says in health what it costs.
func logState(st store.Stats, h *health) logBody {
	b := logBody{State: "ok", Torn: st.TornTails, Corrupt: st.LogCorrupt, LostReadings: st.LostReadings,
		Recoveries: st.LogRecoveries, Damage: st.LogDamage, Quarantined: st.Quarantined}
	if b.Damage == nil {
		b.Damage = []store.LogDamage{}
	}
	if b.Quarantined == nil {
		b.Quarantined = []string{}
	}
	switch {
	case st.Failed != nil:
		b.State, b.Error = "failed", st.Failed.Error()
		h.failing("the store failed and the gateway is restarting to recover from what is on disk: " + b.Error)
	case st.LogBroken != nil:
		b.State, b.Error = "recovering", st.LogBroken.Error()
		h.failing("the write-ahead log failed a write or sync (an undervoltage or a failing card); readings are refused until it is recovered from what is on disk: " + b.Error)
	}
	if b.Corrupt > 0 {
		where := "see store.log.damage"
		for i := len(b.Damage) - 1; i >= 0; i-- {
			if d := b.Damage[i]; d.Lost() {
				where = fmt.Sprintf("latest in %s at offset %d", d.File, d.Offset)
				break
			}
		}
		h.degrade(fmt.Sprintf("the SD card damaged the write-ahead log in %d places (%d readings known lost; %s): the card may be wearing out — replace it", b.Corrupt, b.LostReadings, where))
	}
	return b
}

// outage is the last outage of the uplink that ended.
type outage struct {
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	Seconds float64   `json:"seconds"`
	Waiting uint64    `json:"waiting"`
}

type uplinkBody struct {
	Configured      bool      `json:"configured"`
	State           string    `json:"state"`
	OfflineSince    time.Time `json:"offline_since,omitzero"`
	LastSuccess     time.Time `json:"last_success,omitzero"`
	LastOutage      *outage   `json:"last_outage,omitempty"`
	LastError       string    `json:"last_error,omitempty"`
	LastErrorAt     time.Time `json:"last_error_at,omitzero"`
	Backlog         uint64    `json:"backlog"`
	OldestUnsent    time.Time `json:"oldest_unsent,omitzero"`
	OldestUnsentAge float64   `json:"oldest_unsent_age_seconds"`
	DrainRate       float64   `json:"drain_rate"`
	EstimatedDrain  float64   `json:"estimated_drain_seconds"`
	Sent            uint64    `json:"sent"`
	DeadLetters     int       `json:"dead_letters"`
	Held            string    `json:"held,omitempty"`
	HeldReadings    uint64    `json:"held_readings,omitempty"`
	HoldLeft        float64   `json:"hold_left_seconds,omitempty"`
}

type brokerBody struct {
	Enabled           bool    `json:"enabled"`
	Clients           int64   `json:"clients"`
	Messages          uint64  `json:"messages"`
	Readings          uint64  `json:"readings"`
	Rejected          uint64  `json:"rejected"`
	MessagesPerSecond float64 `json:"messages_per_second"`
}

func (s *Server) getStatus(c *gin.Context) {
	b, err := s.status()
	if err != nil {
		s.fail(c, err)
		return
	}
	reply(c, http.StatusOK, cacheRevalidate, b)
}

// status gathers the whole gateway's state: one place for /status, the web
// page and the live stream.
func (s *Server) status() (statusBody, error) {
	now := s.opts.Now()
	st := s.st.Stats()
	dropped, retired, err := s.st.Removed()
	if err != nil {
		return statusBody{}, err
	}
	b := statusBody{
		GatewayID: st.GatewayID, Name: s.opts.GatewayName, Version: s.opts.Version, Now: now.UTC(), StartedAt: s.started.UTC(),
		Uptime: now.Sub(s.started).Round(time.Second).Seconds(), Clock: "unknown",
		Health:  health{State: "ok", Reasons: []string{}},
		Sensors: map[string]int{"total": 0, "ok": 0, "degraded": 0, "failing": 0, "starting": 0},
		Store: storeBody{Path: s.st.Path(), Readings: st.Readings, LastSeq: st.LastSeq, FileBytes: st.FileBytes,
			UsedBytes: st.UsedBytes, MaxBytes: st.MaxBytes, Queued: st.Queued, LastCommit: st.LastCommit.UTC(),
			FailingSince: st.FailingSince.UTC(), Dropped: dropped, Retired: retired,
			HeadReadings: st.HeadReadings, LogBytes: st.LogBytes, Checkpoints: st.Checkpoints, LastCkpt: st.LastCheckpoint.UTC()},
	}
	h := &b.Health
	b.Store.Log = logState(st, h)
	if st.Err != nil && st.LogBroken == nil && st.Failed == nil {
		b.Store.Error = st.Err.Error()
		h.failing(fmt.Sprintf("readings cannot be stored since %s: %v", st.FailingSince.UTC().Format(time.RFC3339), st.Err))
	}
	if st.CheckpointErr != nil {
		b.Store.CkptError = st.CheckpointErr.Error()
		h.failing(fmt.Sprintf("%d readings wait in the write-ahead log: checkpoints into the store file fail: %v", st.HeadReadings, st.CheckpointErr))
	}
	if cs := s.ConnStats(); !cs.LastRefused.IsZero() && now.Sub(cs.LastRefused) < 5*time.Minute {
		h.degrade(fmt.Sprintf("the API turned connections away at its limits in the last minutes (%d at the cap, %d at one address's share); %s held the most (%d)",
			cs.RefusedCap, cs.RefusedAt, cs.TopAddress, cs.TopOpen))
	}
	if st.MaxBytes > 0 && st.UsedBytes > st.MaxBytes*9/10 {
		h.degrade(fmt.Sprintf("the store is %d%% full", st.UsedBytes*100/st.MaxBytes))
	}
	cr, err := s.st.ClockRepair()
	if err != nil {
		return statusBody{}, err
	}
	b.ClockFix = clockRepair{Pending: cr.Pending, Repaired: cr.Repaired, Stranded: cr.Stranded}
	if s.deps.Clock != nil {
		cs := s.deps.Clock()
		b.Clock = "synced"
		b.ClockFix.SyncedAt, b.ClockFix.StepSeconds = cs.SyncedAt.UTC(), cs.Step.Seconds()
		if !cs.Synced {
			b.Clock = "unsynced"
			h.degrade(cs.Reason)
		}
	}
	if s.deps.Sensors != nil {
		for _, x := range s.deps.Sensors.Health() {
			b.Sensors["total"]++
			b.Sensors[string(x.State)]++
			if x.State == "failing" || x.State == "degraded" {
				h.degrade(fmt.Sprintf("sensor %s is %s: %s", x.Name, x.State, x.LastError))
			}
		}
	}
	if s.deps.Broker != nil {
		m := s.deps.Broker.Stats()
		b.Broker = brokerBody{Enabled: true, Clients: m.Clients, Messages: m.Messages, Readings: m.Readings,
			Rejected: m.RejectedTotal(), MessagesPerSecond: s.rates.rate(now, m.Messages)}
	}
	devs, err := s.devices()
	if err != nil {
		return statusBody{}, err
	}
	for _, d := range devs {
		if state, why := deviceState(d, now); state == deviceSilent {
			h.degrade(fmt.Sprintf("device %s is %s", d.ID, why))
		}
	}
	if err := s.uplinkStatus(&b, now); err != nil {
		return statusBody{}, err
	}
	var warn string
	if b.Autonomy, warn = s.autonomy(st, b.Uplink.Configured, b.Uplink.Backlog, b.Uplink.State, b.Uplink.OfflineSince, now); warn != "" {
		h.degrade(warn)
	}
	return b, nil
}

func (s *Server) uplinkStatus(b *statusBody, now time.Time) error {
	if s.deps.Uplink == nil {
		b.Uplink.State = "disabled"
		return nil
	}
	u := s.deps.Uplink.Status()
	ob, err := s.st.Outbox()
	if err != nil {
		return err
	}
	b.Uplink = uplinkBody{Configured: true, State: u.State, OfflineSince: u.OfflineSince.UTC(), LastSuccess: u.LastSuccess.UTC(),
		LastError: u.LastError, LastErrorAt: u.LastErrorAt.UTC(), Backlog: u.Backlog, OldestUnsent: u.OldestUnsent.UTC(),
		DrainRate: u.DrainRate, EstimatedDrain: u.EstimatedDrain.Seconds(), Sent: u.Sent, DeadLetters: len(ob.DeadLetters),
		HeldReadings: u.HeldForClock}
	if left := s.holdLeft(u); u.HeldForClock > 0 {
		b.Uplink.Held, b.Uplink.HoldLeft = uplink.HoldWords(u.HeldForClock, left), left.Round(time.Second).Seconds()
	}
	if !u.OldestUnsent.IsZero() {
		b.Uplink.OldestUnsentAge = max(0, now.Sub(u.OldestUnsent).Seconds())
	}
	if o := u.LastOutage; !o.Until.IsZero() {
		b.Uplink.LastOutage = &outage{Started: o.Since.UTC(), Ended: o.Until.UTC(), Seconds: o.Until.Sub(o.Since).Round(time.Second).Seconds(), Waiting: o.Waiting}
	}
	switch u.State {
	case "held":
		b.Health.degrade(b.Uplink.Held)
	case "offline":
		b.Health.degrade(fmt.Sprintf("the uplink is offline (%s); %d readings wait", u.LastError, u.Backlog))
	case "unauthorized":
		b.Health.degrade("the cloud refuses the gateway's token; readings are kept until it is fixed")
	case "redirected":
		b.Health.degrade(fmt.Sprintf("the cloud redirects the uploads (%s); readings are kept until uplink.url is fixed", u.LastError))
	case "misconfigured":
		b.Health.degrade(fmt.Sprintf("the uplink's URL does not reach a receiver (%s); readings are kept, and nothing is dead-lettered, until it does", u.LastError))
	case "refusing":
		b.Health.degrade(fmt.Sprintf("the cloud refused batch after batch (%s); sending is paused, then tried again", u.LastError))
	}
	if n := len(ob.DeadLetters); n > 0 {
		b.Health.degrade(fmt.Sprintf("%d batches were refused by the cloud (dead letters)", n))
	}
	return nil
}

// rateSampler turns a counter into a per-second rate over at least 5 s.
type rateSampler struct {
	mu    sync.Mutex
	at    time.Time
	count uint64
	last  float64
}

func (r *rateSampler) rate(now time.Time, count uint64) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.at.IsZero() {
		r.at, r.count = now, count
		return 0
	}
	if dt := now.Sub(r.at); dt >= 5*time.Second {
		r.last = float64(count-r.count) / dt.Seconds()
		r.at, r.count = now, count
	}
	return r.last
}

// healthz is liveness: the process serves and its committer answers. A
// committer that fails commits on a full disk is alive (room frees by
// itself); one that does not answer at all is wedged, and a log that a
// failed sync broke, or a store that failed, are not healthy either (see
// store.Unhealthy).
func (s *Server) healthz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
	defer cancel()
	if err := s.st.Ping(ctx); err != nil && (ctx.Err() != nil || store.Unhealthy(err)) {
		reason := "the store's committer does not answer"
		switch {
		case errors.Is(err, store.ErrLogBroken):
			reason = "the write-ahead log failed a write or sync and is being recovered from what is on disk"
		case ctx.Err() == nil:
			reason = "the store failed; the gateway restarts to recover: " + err.Error()
		}
		reply(c, http.StatusServiceUnavailable, "no-store", map[string]any{"status": "wedged", "reason": reason})
		return
	}
	reply(c, http.StatusOK, "no-store", map[string]any{"status": "ok"})
}

// readyz is readiness: the gateway can take readings now. It fails while
// writes fail (disk full, I/O errors), while the MQTT broker does not
// answer a CONNECT (or a connection limit turns it away), and while
// shutting down.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{"store": "ok"}
	status := http.StatusOK
	if err := s.st.Ping(ctx); err != nil {
		status = http.StatusServiceUnavailable
		switch {
		case errors.Is(err, store.ErrClosed):
			checks["store"] = "shutting down"
		case ctx.Err() != nil:
			checks["store"] = "the committer does not answer"
		case errors.Is(err, store.ErrLogBroken):
			checks["store"] = "recovering the write-ahead log after a failed write or sync: " + err.Error()
		case errors.Is(err, store.ErrFailed):
			checks["store"] = "failed; restarting: " + err.Error()
		default:
			checks["store"] = "commits fail: " + err.Error()
		}
	}
	if s.deps.Broker != nil {
		checks["mqtt"] = "ok"
		if err := s.probe.get(ctx, s.opts.Now(), s.deps.Broker.Probe); err != nil {
			status, checks["mqtt"] = http.StatusServiceUnavailable, "no CONNACK: "+err.Error()
		}
	}
	verdict := "ready"
	if status != http.StatusOK {
		verdict = "not ready"
	}
	reply(c, status, "no-store", map[string]any{"status": verdict, "checks": checks})
}

// probeCache keeps the broker probe's outcome for a second: every /readyz
// used to open an MQTT connection, which a client polling it in a loop
// turned into a connection flood of the gateway's own making.
type probeCache struct {
	mu  sync.Mutex
	at  time.Time
	err error
}

// get returns the last probe's outcome if it is under a second old, or
// probes again.
func (p *probeCache) get(ctx context.Context, now time.Time, probe func(context.Context) error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.at.IsZero() && now.Sub(p.at) < time.Second && now.After(p.at.Add(-time.Second)) {
		return p.err
	}
	p.err, p.at = probe(ctx), now
	return p.err
}

// holdLeft is how long until readings held for the clock go flagged
// unsynced: 0 when none are held or the clock is not known.
func (s *Server) holdLeft(u uplink.Status) time.Duration {
	if u.HeldForClock == 0 || s.deps.Clock == nil {
		return 0
	}
	return s.deps.Clock().HoldLeft
}

// Summary is the gateway's state in three figures, for the status the
// uplink reports to the cloud's fleet view.
type Summary struct {
	Health   string // "ok", "degraded" or "failing"
	Synced   bool   // the clock is synchronised
	Autonomy time.Duration
}

// Summary sums up what /status says (health "failing" when it cannot be
// gathered).
func (s *Server) Summary() Summary {
	b, err := s.status()
	if err != nil {
		return Summary{Health: "failing"}
	}
	out := Summary{Health: b.Health.State, Synced: b.Clock == "synced"}
	if b.Autonomy.Seconds != nil {
		out.Autonomy = time.Duration(*b.Autonomy.Seconds * float64(time.Second))
	}
	return out
}
