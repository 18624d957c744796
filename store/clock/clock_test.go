package clock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldgate/store"
)

// fakeSource is a machine whose wall clock can be stepped and whose time
// since boot advances only when told.
type fakeSource struct {
	mu     sync.Mutex
	wall   time.Time
	since  time.Duration
	synced bool
	err    error
}

func (f *fakeSource) Wall() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wall
}

func (f *fakeSource) SinceBoot() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.since
}

func (f *fakeSource) NTPSynced() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.synced, f.err
}

// advance moves both clocks forward by d.
func (f *fakeSource) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wall, f.since = f.wall.Add(d), f.since+d
}

// ntpSets steps the wall clock to wall and reports the sync.
func (f *fakeSource) ntpSets(wall time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wall, f.synced = wall, true
}

var (
	// A Pi with fake-hwclock boots with the time of its last shutdown…
	shutdown = time.Date(2026, 3, 2, 17, 4, 0, 0, time.UTC)
	// …while it really is this, 20 s after boot.
	trueBoot = time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
)

func openStore(tb testing.TB, boot string) *store.Store {
	tb.Helper()
	st, err := store.Open(store.Options{Path: filepath.Join(tb.TempDir(), "fieldgate.db"), BootID: boot})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return st
}

// take stamps one reading of value v through tr and stores it durably.
func take(tb testing.TB, st *store.Store, tr *Tracker, v float64) {
	tb.Helper()
	at, clk, mono := tr.Stamp()
	r := store.Reading{Source: "i2c1-0x44", Quantity: "temperature", Value: v, Unit: "Cel", Time: at, Clock: clk, Mono: mono}
	if err := st.Append(context.Background(), r); err != nil {
		tb.Fatal(err)
	}
}

func all(tb testing.TB, st *store.Store) []store.Reading {
	tb.Helper()
	rs, err := st.ReadingsAfter(0, 1000)
	if err != nil {
		tb.Fatal(err)
	}
	return rs
}

func TestReadingsTakenBeforeNTPAreRepairedAtTheSync(t *testing.T) {
	src := &fakeSource{wall: shutdown.Add(20 * time.Second), since: 20 * time.Second}
	st := openStore(t, "boot-1")
	tr := New(src, st, Options{})
	if tr.Synced() || !strings.Contains(tr.State().Reason, "not synchronised") {
		t.Fatalf("state at a boot without network = %+v", tr.State())
	}
	for i := range 6 { // a minute of readings every 10 s
		take(t, st, tr, float64(i))
		src.advance(10 * time.Second)
		tr.Check()
	}
	if cr, _ := st.ClockRepair(); cr.Pending != 6 || cr.HoldFrom != 1 {
		t.Fatalf("before the sync: %+v, want 6 pending held from seq 1", cr)
	}

	// NTP steps the clock to the truth, 80 s after boot.
	src.ntpSets(trueBoot.Add(80 * time.Second))
	tr.Check()
	s := tr.State()
	if !s.Synced || s.Repaired != 6 || s.Step != trueBoot.Sub(shutdown) {
		t.Fatalf("state after the sync = %+v, want synced, 6 repaired, step %s", s, trueBoot.Sub(shutdown))
	}
	take(t, st, tr, 6)
	for i, r := range all(t, st) {
		want := trueBoot.Add(20*time.Second + time.Duration(i)*10*time.Second)
		if !r.Time.Equal(want) || r.Clock != store.ClockSynced {
			t.Errorf("reading %d = %s %s, want %s synced", i, r.Time, r.Clock, want)
		}
	}
	if cr, _ := st.ClockRepair(); cr.Pending != 0 || cr.Repaired != 6 {
		t.Errorf("after the sync: %+v", cr)
	}
}

func TestSyncedAtStartStampsSyncedAndRepairsNothing(t *testing.T) {
	src := &fakeSource{wall: trueBoot, since: time.Hour, synced: true}
	st := openStore(t, "boot-1")
	tr := New(src, st, Options{})
	take(t, st, tr, 1)
	if r := all(t, st)[0]; r.Clock != store.ClockSynced || !r.Time.Equal(trueBoot) {
		t.Errorf("reading = %v %v", r.Time, r.Clock)
	}
	if s := tr.State(); !s.Synced || s.Repaired != 0 || s.Step != 0 {
		t.Errorf("state = %+v", s)
	}
}

func TestTrustSystemUsesTheFloor(t *testing.T) {
	// An RTC with a dead battery boots in 2000; the store's newest reading
	// says it cannot be before November 2026.
	src := &fakeSource{wall: time.Date(2000, 1, 1, 0, 0, 30, 0, time.UTC), since: 30 * time.Second}
	st := openStore(t, "boot-1")
	tr := New(src, st, Options{Floor: trueBoot.Add(-time.Hour), Config: Config{Trust: TrustSystem}})
	if tr.Synced() || !strings.Contains(tr.State().Reason, "before 2026-11-22T05:00:00Z") {
		t.Fatalf("state = %+v", tr.State())
	}
	take(t, st, tr, 1)
	src.advance(10 * time.Second)
	tr.Check()
	// Somebody (NTP, a technician with `date -s`) sets the clock.
	src.ntpSets(trueBoot.Add(90 * time.Second))
	src.synced = false // no NTP daemon: the floor alone decides
	tr.Check()
	// Set to trueBoot+90s at 40 s after boot: the reading taken 30 s after
	// boot was taken at trueBoot+80s.
	if r := all(t, st)[0]; r.Clock != store.ClockSynced || !r.Time.Equal(trueBoot.Add(80*time.Second)) {
		t.Errorf("reading after the clock was set = %v %v, want %v synced", r.Time, r.Clock, trueBoot.Add(80*time.Second))
	}
}

func TestGivingUpReleasesHeldReadingsFlagged(t *testing.T) {
	src := &fakeSource{wall: shutdown.Add(time.Minute), since: time.Minute}
	st := openStore(t, "boot-1")
	tr := New(src, st, Options{Config: Config{UploadHold: time.Hour}})
	take(t, st, tr, 1)
	if left := tr.State().HoldLeft; left != 59*time.Minute {
		t.Errorf("a minute after boot: hold left %s, want 59m", left)
	}
	src.advance(time.Hour)
	tr.Check()
	s := tr.State()
	if !s.GaveUp || !strings.Contains(s.Reason, "gave up") || s.HoldLeft != 0 {
		t.Fatalf("state after the hold = %+v", s)
	}
	if cr, _ := st.ClockRepair(); cr.Pending != 0 || cr.HoldFrom != 0 || cr.Stranded != 1 {
		t.Fatalf("after the hold: %+v, want nothing held and 1 stranded", cr)
	}
	take(t, st, tr, 2) // no longer kept for repair: it would be held again
	if cr, _ := st.ClockRepair(); cr.Pending != 0 {
		t.Fatalf("a reading after giving up is pending: %+v", cr)
	}
	src.ntpSets(trueBoot.Add(2 * time.Hour))
	tr.Check()
	for _, r := range all(t, st) {
		if r.Clock != store.ClockUnsynced || r.Time.Year() != 2026 || r.Time.Month() != time.March {
			t.Errorf("released reading = %v %v, want its March time flagged unsynced", r.Time, r.Clock)
		}
	}
	if s := tr.State(); !s.Synced || s.Repaired != 0 || !s.GaveUp {
		t.Errorf("state after a late sync = %+v", s)
	}
}

func TestUnknownNTPStateIsUnsyncedWithTheReason(t *testing.T) {
	src := &fakeSource{wall: trueBoot, since: time.Minute, err: errors.New("adjtimex is not permitted")}
	tr := New(src, openStore(t, "boot-1"), Options{})
	if _, clk, mono := tr.Stamp(); clk != store.ClockUnsynced || mono != time.Minute {
		t.Errorf("Stamp = %v, %v", clk, mono)
	}
	if r := tr.State().Reason; !strings.Contains(r, "adjtimex is not permitted") || !strings.Contains(r, "clock.trust: system") {
		t.Errorf("reason = %q", r)
	}
}

// failingRepairer refuses to repair, as a store on a full disk would.
type failingRepairer struct{ calls int }

func (f *failingRepairer) RepairClock(time.Time) (int, error) {
	f.calls++
	return 0, errors.New("no space left on device")
}
func (f *failingRepairer) AbandonClockRepair() (int, error) { return 0, nil }

func TestFailedRepairLeavesReadingsPending(t *testing.T) {
	src := &fakeSource{wall: shutdown, since: time.Minute}
	rep := &failingRepairer{}
	tr := New(src, rep, Options{})
	src.ntpSets(trueBoot)
	tr.Check()
	tr.Check()
	// Synced from now on; the pending readings keep their hold and every
	// check tries the repair again.
	if !tr.Synced() || rep.calls != 2 {
		t.Errorf("synced=%v repair calls=%d, want true and 2", tr.Synced(), rep.calls)
	}
}

func TestSystemSource(t *testing.T) {
	var s System
	a := s.SinceBoot()
	time.Sleep(2 * time.Millisecond)
	if b := s.SinceBoot(); a <= 0 || b <= a {
		t.Errorf("SinceBoot went %v → %v", a, b)
	}
	flag := filepath.Join(t.TempDir(), "synchronized")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, err := (System{FlagFile: flag}).NTPSynced(); !ok || err != nil {
		t.Errorf("with timesyncd's flag: %v, %v", ok, err)
	}
	// Without the flag, the kernel answers (synced or not, without error).
	if _, err := (System{FlagFile: flag + ".absent"}).NTPSynced(); err != nil {
		t.Errorf("adjtimex: %v", err)
	}
	t.Setenv("FIELDGATE_BOOT_ID", "from-systemd")
	if id := BootID(); id != "from-systemd" {
		t.Errorf("BootID = %q with the variable set", id)
	}
	t.Setenv("FIELDGATE_BOOT_ID", "")
	if id := BootID(); len(id) != 36 {
		t.Errorf("BootID = %q, want the kernel's uuid", id)
	}
}

// A reading stamped just before the sync may be committed just after the
// repair (queued readings wait for the commit interval): the next check
// repairs it.
func TestStragglerCommittedAfterTheRepairIsRepaired(t *testing.T) {
	src := &fakeSource{wall: shutdown.Add(20 * time.Second), since: 20 * time.Second}
	st := openStore(t, "boot-1")
	tr := New(src, st, Options{})
	at, clk, mono := tr.Stamp() // stamped, still in the committer's queue…
	src.advance(time.Second)
	src.ntpSets(trueBoot.Add(21 * time.Second))
	tr.Check() // …when the clock syncs and the repair runs
	r := store.Reading{Source: "esp32-a", Quantity: "temperature", Value: 1, Unit: "Cel", Time: at, Clock: clk, Mono: mono}
	if err := st.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	tr.Check()
	if got := all(t, st)[0]; got.Clock != store.ClockSynced || !got.Time.Equal(trueBoot.Add(20*time.Second)) {
		t.Errorf("straggler = %v %v, want %v synced", got.Time, got.Clock, trueBoot.Add(20*time.Second))
	}
	if s := tr.State(); s.Repaired != 1 {
		t.Errorf("state = %+v, want 1 repaired", s)
	}
}

// A reading stamped (for repair) just before the tracker gave up, and
// committed just after, must not hold the uploads: the next check releases it.
func TestStragglerAfterGivingUpIsReleased(t *testing.T) {
	src := &fakeSource{wall: shutdown.Add(time.Minute), since: time.Minute}
	st := openStore(t, "boot-1")
	tr := New(src, st, Options{Config: Config{UploadHold: time.Hour}})
	at, clk, mono := tr.Stamp()
	src.advance(time.Hour)
	tr.Check() // gives up
	r := store.Reading{Source: "esp32-a", Quantity: "temperature", Value: 1, Unit: "Cel", Time: at, Clock: clk, Mono: mono}
	if err := st.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if cr, _ := st.ClockRepair(); cr.HoldFrom == 0 {
		t.Fatal("the straggler should be pending until the next check")
	}
	tr.Check()
	if cr, _ := st.ClockRepair(); cr.Pending != 0 || cr.HoldFrom != 0 || cr.Stranded != 1 {
		t.Errorf("after the next check: %+v, want the straggler released", cr)
	}
}
