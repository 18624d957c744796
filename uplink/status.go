package uplink

import (
	"strconv"
	"sync"
	"time"
)

// Status is the uplink's connectivity and backlog, for the API and metrics.
type Status struct {
	// State is "starting" (no answer yet), "online", "held" (what is left
	// to send waits for the clock to sync: see HeldForClock), "offline"
	// (retrying), "unauthorized" (paused on 401/403), "redirected" (paused
	// on a 3xx: uplink.url must change), "misconfigured" (paused on a 404,
	// a 405 or a 4xx without the receiver's error body: uplink.url does
	// not reach a receiver) or "refusing" (paused after a run of dead
	// letters).
	State        string
	OfflineSince time.Time
	LastSuccess  time.Time
	LastError    string
	LastErrorAt  time.Time
	// Backlog is how many stored readings the cloud has not acknowledged;
	// OldestUnsent is the time of the oldest of them.
	Backlog      uint64
	OldestUnsent time.Time
	// DrainRate is readings acknowledged per second over the last minute;
	// EstimatedDrain the backlog divided by it.
	DrainRate      float64
	EstimatedDrain time.Duration
	// HeldForClock counts the unsent readings from the first one taken
	// before the clock synced on: none of them may go before their times
	// are repaired (see store.ClockRepair).
	HeldForClock uint64
	// Retrying is how many dead letters are queued or in flight for a
	// retry.
	Retrying int
	// LastOutage is the last time the cloud was out of reach (or sending
	// paused) and came back: zero until one ended.
	LastOutage Outage
	// Counters since start.
	Sent, Batches, Retries, DeadLettered, Splits uint64
	BytesSent                                    uint64 // compressed bodies acknowledged
}

// Outage is a stretch of time the uplink could not deliver.
type Outage struct {
	Since, Until time.Time
	// Waiting is how many readings waited for the cloud when it ended.
	Waiting uint64
}

// tracker keeps the parts of Status the sender learns as it goes.
type tracker struct {
	now func() time.Time
	mu  sync.Mutex
	s   Status
	win []ack // acknowledgements over the last minute
}

type ack struct {
	at time.Time
	n  int
}

func newTracker(now func() time.Time) *tracker {
	return &tracker{now: now, s: Status{State: "starting"}}
}

func (t *tracker) retrying(n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.s.Retrying = n
}

// success records an acknowledged batch; when it ends an outage it
// returns when the outage began, and first is true for the first success
// since start.
func (t *tracker) success(readings, bytes int) (outageSince time.Time, first bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	outageSince, first = t.s.OfflineSince, t.s.State == "starting"
	t.s.State, t.s.OfflineSince, t.s.LastSuccess = "online", time.Time{}, now
	t.s.Sent += uint64(readings)
	t.s.Batches++
	t.s.BytesSent += uint64(bytes)
	t.win = append(t.win, ack{now, readings})
	return outageSince, first
}

// outageEnded records the outage that ended now, with waiting readings.
func (t *tracker) outageEnded(since time.Time, waiting uint64) Outage {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.s.LastOutage = Outage{Since: since, Until: t.now(), Waiting: waiting}
	return t.s.LastOutage
}

// failure records a retryable failure and reports whether the uplink just
// went offline (worth one log line).
func (t *tracker) failure(status int, reason string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.s.LastError, t.s.LastErrorAt = describe(status, reason), now
	if t.s.State == "offline" {
		return false
	}
	t.s.State, t.s.OfflineSince = "offline", now
	return true
}

// paused records an answer that only a change of configuration can fix —
// state "unauthorized" (401/403) or "redirected" (3xx) — and reports
// whether sending just got paused.
func (t *tracker) paused(state string, status int, reason string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.s.LastError, t.s.LastErrorAt = describe(status, reason), now
	if t.s.State == state {
		return false
	}
	if t.s.OfflineSince.IsZero() {
		t.s.OfflineSince = now
	}
	t.s.State = state
	return true
}

func (t *tracker) retried()      { t.count(&t.s.Retries) }
func (t *tracker) deadLettered() { t.count(&t.s.DeadLettered) }
func (t *tracker) split()        { t.count(&t.s.Splits) }

func (t *tracker) count(c *uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	*c++
}

func describe(status int, reason string) string {
	if status == 0 {
		return reason
	}
	if reason == "" {
		return "HTTP " + strconv.Itoa(status)
	}
	return "HTTP " + strconv.Itoa(status) + ": " + reason
}

// status combines what the sender learned with the store's outbox.
func (t *tracker) status(st Store) Status {
	t.mu.Lock()
	now := t.now()
	for len(t.win) > 0 && now.Sub(t.win[0].at) > time.Minute {
		t.win = t.win[1:]
	}
	acked := 0
	for _, a := range t.win {
		acked += a.n
	}
	s := t.s
	t.mu.Unlock()
	s.DrainRate = float64(acked) / time.Minute.Seconds()
	ob, err := st.Outbox()
	if err != nil {
		s.LastError = "reading the outbox: " + err.Error()
		return s
	}
	s.Backlog = ob.Unsent
	if ob.HoldFrom > ob.Acked {
		s.HeldForClock = min(ob.Unsent, ob.LastSeq-ob.HoldFrom+1)
		if s.HeldForClock == ob.Unsent && (s.State == "starting" || s.State == "online") {
			s.State = "held"
		}
	}
	if rs, err := st.ReadingsAfter(ob.Acked, 1); err == nil && len(rs) > 0 {
		s.OldestUnsent = rs[0].Time
	}
	if s.DrainRate > 0 {
		s.EstimatedDrain = time.Duration(float64(s.Backlog) / s.DrainRate * float64(time.Second))
	}
	return s
}
