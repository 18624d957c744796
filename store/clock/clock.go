// Package clock decides whether the gateway's wall clock can be trusted and
// stamps readings accordingly.
//
// A Raspberry Pi has no real-time clock: after a boot without network its
// time is 1970, or the last shutdown time restored by fake-hwclock, until NTP
// steps it. A reading taken meanwhile is stamped with the (wrong) wall time,
// flagged store.ClockUnsynced, and carries the time since boot (CLOCK_BOOTTIME,
// which no clock step moves). When the clock syncs, the Tracker computes the
// true wall time of the boot and has the store repair every pending reading
// before the uplink may send it. Readings of a boot that never got a synced
// clock stay flagged: never silently misdated.
package clock

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"fieldgate/store"
)

// Source is the machine's clocks; tests inject a fake.
type Source interface {
	// Wall returns the wall-clock time.
	Wall() time.Time
	// SinceBoot returns the time since boot on a clock no step moves.
	SinceBoot() time.Duration
	// NTPSynced reports whether a time daemon has synchronised the clock.
	NTPSynced() (bool, error)
}

// Trust says what makes the wall clock trustworthy.
type Trust string

const (
	// TrustNTP trusts the clock once a time daemon says it synced it: the
	// right choice for a Pi without a real-time clock.
	TrustNTP Trust = "ntp"
	// TrustSystem trusts the clock whenever it is past the floor: for a
	// gateway with a battery-backed RTC, or a PC.
	TrustSystem Trust = "system"
)

// Repairer is what the tracker needs of the store.
type Repairer interface {
	RepairClock(bootWall time.Time) (int, error)
	AbandonClockRepair() (int, error)
}

var _ Repairer = (*store.Store)(nil)

// Options configure a Tracker.
type Options struct {
	// Config is what the configuration file sets (the clock: section).
	Config
	// Floor is a time the clock cannot be before when right: the build date
	// or the newest synced reading in the store. Under TrustSystem a clock
	// before it is unsynced.
	Floor time.Time
	// Logger receives state changes. Default: discard.
	Logger *slog.Logger
}

// Tracker stamps readings and repairs them when the clock syncs.
// Stamp is safe for concurrent use; Check must be called from one goroutine
// (Run does that).
type Tracker struct {
	src Source
	st  Repairer
	o   Options

	synced  atomic.Bool
	holding atomic.Bool // unsynced readings still carry Mono for repair

	mu    sync.Mutex
	state State
	// bootWall is the wall time of boot: until the sync as the wrong clock
	// had it at the last check (the step is measured against it), after
	// the sync the true one that repairs readings.
	bootWall time.Time
}

// State is the tracker's view of the clock, for status pages.
type State struct {
	// Synced says the wall clock is trusted.
	Synced bool
	// Reason says why it is not, in words ("" when synced).
	Reason string
	// SyncedAt is when the tracker saw the clock become trusted.
	SyncedAt time.Time
	// Step is how far the clock moved at the sync (the error of the
	// readings taken before it).
	Step time.Duration
	// Repaired is how many readings the sync repaired.
	Repaired int
	// GaveUp says the hold expired before any sync.
	GaveUp bool
	// HoldLeft is, while unsynced and still holding, how long until the
	// readings waiting for the sync are released flagged unsynced.
	HoldLeft time.Duration
}

// New returns a tracker over src that repairs readings in st. It evaluates
// the clock once, so the first Stamp is already right.
func New(src Source, st Repairer, o Options) *Tracker {
	d := DefaultConfig()
	if o.Trust == "" {
		o.Trust = d.Trust
	}
	if o.UploadHold == 0 {
		o.UploadHold = d.UploadHold
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	t := &Tracker{src: src, st: st, o: o}
	t.holding.Store(true)
	t.Check()
	return t
}

// Stamp returns the time of a reading taken now, with its clock state and,
// while the clock is unsynced and repair is possible, the time since boot.
func (t *Tracker) Stamp() (wall time.Time, clock store.Clock, mono time.Duration) {
	wall = t.src.Wall()
	if t.synced.Load() {
		return wall, store.ClockSynced, 0
	}
	if !t.holding.Load() {
		return wall, store.ClockUnsynced, 0
	}
	return wall, store.ClockUnsynced, t.src.SinceBoot()
}

// Synced reports whether the clock is trusted now.
func (t *Tracker) Synced() bool { return t.synced.Load() }

// State returns the tracker's view of the clock.
func (t *Tracker) State() State {
	t.mu.Lock()
	s := t.state
	t.mu.Unlock()
	if !s.Synced && t.holding.Load() {
		s.HoldLeft = max(0, t.o.UploadHold-t.src.SinceBoot())
	}
	return s
}

// Run checks the clock every interval until ctx ends.
func (t *Tracker) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.Check()
		}
	}
}

// Check looks at the clock once. When it finds it newly trustworthy, it
// repairs the pending readings; when the hold has expired, it releases them.
// Once synced, the clock stays trusted for the life of the tracker: a Pi
// keeps time to a few ppm between NTP contacts.
func (t *Tracker) Check() {
	if t.synced.Load() {
		t.straggle()
		return
	}
	ok, reason := t.trusted()
	if !ok {
		t.unsynced(reason)
		return
	}
	// The readings' Mono is time since boot, so the boot's true wall time is
	// all the repair needs. Read both clocks back to back.
	wall, since := t.src.Wall(), t.src.SinceBoot()
	bootWall := wall.Add(-since)
	step := t.stepSince(bootWall)
	t.synced.Store(true)
	n, err := 0, error(nil)
	if t.holding.Load() {
		n, err = t.st.RepairClock(bootWall)
	}
	t.mu.Lock()
	t.state = State{Synced: true, SyncedAt: wall, Step: step, Repaired: n, GaveUp: t.state.GaveUp}
	t.bootWall = bootWall
	t.mu.Unlock()
	if err != nil {
		// The readings stay pending (and held): the next check retries.
		t.o.Logger.Error("clock synchronised, but repairing the times of readings taken before failed", "err", err, "repaired", n)
		return
	}
	t.o.Logger.Info("clock synchronised", "step", step.Round(time.Millisecond), "repaired_readings", n)
}

// straggle settles readings stamped before the sync but committed after
// it (queued readings wait up to the commit interval): it repairs them, or,
// once the tracker gave up holding, releases them. It also retries a repair
// that failed. With nothing pending it costs a read transaction.
func (t *Tracker) straggle() {
	if !t.holding.Load() {
		t.release()
		return
	}
	t.mu.Lock()
	bootWall := t.bootWall
	t.mu.Unlock()
	n, err := t.st.RepairClock(bootWall)
	if err != nil {
		t.o.Logger.Error("repairing the times of readings taken before the clock synced failed", "err", err)
	}
	if n > 0 {
		t.mu.Lock()
		t.state.Repaired += n
		t.mu.Unlock()
	}
}

// release lets pending readings go flagged unsynced and reports how many.
func (t *Tracker) release() int {
	n, err := t.st.AbandonClockRepair()
	if err != nil {
		t.o.Logger.Error("cannot release readings held for clock repair", "err", err)
	}
	return n
}

// trusted applies the trust policy.
func (t *Tracker) trusted() (bool, string) {
	switch t.o.Trust {
	case TrustSystem:
		if wall := t.src.Wall(); wall.Before(t.o.Floor) {
			return false, fmt.Sprintf("the clock says %s, before %s (build date or newest stored reading)", wall.UTC().Format(time.RFC3339), t.o.Floor.UTC().Format(time.RFC3339))
		}
		return true, ""
	default:
		ok, err := t.src.NTPSynced()
		if err != nil {
			return false, fmt.Sprintf("cannot tell whether NTP synchronised the clock (%v); set clock.trust: system if it is set another way", err)
		}
		if !ok {
			return false, "the system clock is not synchronised (no NTP yet): reading times will be repaired when it is"
		}
		return true, ""
	}
}

// unsynced records the reason and, once the hold expired, gives up holding:
// pending readings (and stragglers, at later checks) are released.
func (t *Tracker) unsynced(reason string) {
	gaveUp := false
	if t.holding.Load() && t.src.SinceBoot() >= t.o.UploadHold {
		t.holding.Store(false)
		gaveUp = true
	}
	if !t.holding.Load() {
		if n := t.release(); gaveUp {
			t.o.Logger.Warn("clock still not synchronised: readings go to the cloud flagged unsynced from now on; check NTP, or set clock.trust: system", "up_for", t.o.UploadHold, "released", n)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.holding.Load() {
		reason += "; gave up waiting for it: readings are stored flagged unsynced"
	}
	t.state.Reason = reason
	t.state.GaveUp = t.state.GaveUp || gaveUp
	t.bootWall = t.src.Wall().Add(-t.src.SinceBoot())
}

// stepSince is how far the clock jumped since the last unsynced check.
func (t *Tracker) stepSince(bootWall time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bootWall.IsZero() {
		return 0
	}
	return bootWall.Sub(t.bootWall)
}
