package store

import (
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// unsynced builds a reading stamped while the clock was wrong: its wall time
// is in 1970 and it was taken mono after boot.
func unsynced(i int, mono time.Duration) Reading {
	r := reading("i2c1-0x44", "temperature", i, float64(i))
	r.Time = time.Unix(0, 0).Add(mono).UTC()
	r.Clock, r.Mono = ClockUnsynced, mono
	return r
}

func wantRepair(tb testing.TB, s *Store, want ClockRepair) {
	tb.Helper()
	got, err := s.ClockRepair()
	if err != nil {
		tb.Fatal(err)
	}
	if got != want {
		tb.Fatalf("ClockRepair = %+v, want %+v", got, want)
	}
}

func TestRepairClockRewritesTimesAndIndex(t *testing.T) {
	s := mustOpen(t, Options{BootID: "boot-a"})
	mustAppend(t, s, reading("i2c1-0x44", "temperature", 0, 20)) // synced, seq 1
	var rs []Reading
	for i := 1; i <= 10; i++ {
		rs = append(rs, unsynced(i, time.Duration(i)*time.Minute)) // seqs 2..11
	}
	noMono := unsynced(11, 0) // seq 12: flagged, but nothing to repair it from
	noMono.Mono = 0
	mustAppend(t, s, append(rs, noMono)...)

	wantRepair(t, s, ClockRepair{Pending: 10, HoldFrom: 2})
	ob, err := s.Outbox()
	if err != nil || ob.HoldFrom != 2 {
		t.Fatalf("Outbox().HoldFrom = %d, %v; want 2", ob.HoldFrom, err)
	}

	bootWall := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	n, err := s.RepairClock(bootWall)
	if err != nil || n != 10 {
		t.Fatalf("RepairClock = %d, %v; want 10", n, err)
	}
	wantRepair(t, s, ClockRepair{Repaired: 10})

	got, err := s.Readings(Query{Source: "i2c1-0x44", Quantity: "temperature"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 12 {
		t.Fatalf("%d readings, want 12", len(got))
	}
	// The index is in time order: the 1970 reading first, then the synced
	// one of t0 (July), then the ten repaired ones of November.
	if got[0].Seq != 12 || got[0].Clock != ClockUnsynced {
		t.Errorf("first by time = %v, want seq 12 still unsynced", got[0])
	}
	if got[1].Seq != 1 || !got[1].Time.Equal(t0) {
		t.Errorf("second by time = %v, want the synced seq 1", got[1])
	}
	for i, r := range got[2:] {
		want := bootWall.Add(time.Duration(i+1) * time.Minute)
		if r.Seq != uint64(i+2) || !r.Time.Equal(want) || r.Clock != ClockSynced || r.Value != float64(i+1) {
			t.Errorf("repaired reading %d = %v, want seq %d at %s synced", i, r, i+2, want)
		}
	}
	// A query over the repaired range finds them there and nowhere else.
	if c, _ := s.Count(Query{Source: "i2c1-0x44", Quantity: "temperature", From: bootWall, To: bootWall.Add(time.Hour)}); c != 10 {
		t.Errorf("%d readings in the repaired hour, want 10", c)
	}
	if c, _ := s.Count(Query{Source: "i2c1-0x44", Quantity: "temperature", To: time.Unix(3600, 0)}); c != 1 {
		t.Errorf("%d readings left in 1970, want 1 (the one without Mono)", c)
	}
	mustCheck(t, s)
}

func TestRepairSkipsReadingsAlreadyInABatch(t *testing.T) {
	s := mustOpen(t, Options{BootID: "boot-a"})
	mustAppend(t, s, unsynced(1, time.Minute), unsynced(2, 2*time.Minute), unsynced(3, 3*time.Minute))
	// The hold was given up and seq 1-2 went out flagged: they must stay as
	// sent (a resend is byte for byte), only seq 3 is repaired. (FormBatch
	// no longer reaches held readings; the batch is written as an older
	// fieldgate would have.)
	mustDo(t, s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bOutbox).Put(seqKey(1), encodeBatch(Batch{First: 1, Last: 2, Recorded: t0}))
	}))
	n, err := s.RepairClock(time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC))
	if err != nil || n != 1 {
		t.Fatalf("RepairClock = %d, %v; want 1", n, err)
	}
	wantRepair(t, s, ClockRepair{Repaired: 1, Stranded: 2})
	rs, _ := s.ReadingsAfter(0, 10)
	if rs[0].Clock != ClockUnsynced || rs[1].Clock != ClockUnsynced || rs[2].Clock != ClockSynced {
		t.Errorf("clocks after repair: %v", rs)
	}
}

func TestPendingRepairSurvivesARestartButNotAReboot(t *testing.T) {
	s := mustOpen(t, Options{BootID: "boot-a"})
	mustAppend(t, s, unsynced(1, time.Minute), unsynced(2, 2*time.Minute))

	s = reopen(t, s, Options{BootID: "boot-a"}) // the service restarted
	wantRepair(t, s, ClockRepair{Pending: 2, HoldFrom: 1})

	s = reopen(t, s, Options{BootID: "boot-b"}) // the machine rebooted
	wantRepair(t, s, ClockRepair{Stranded: 2})
	if n, err := s.RepairClock(time.Now()); err != nil || n != 0 {
		t.Fatalf("RepairClock after reboot = %d, %v; want 0", n, err)
	}
	rs, _ := s.ReadingsAfter(0, 10)
	for _, r := range rs {
		if r.Clock != ClockUnsynced || r.Time.Year() != 1970 {
			t.Errorf("reading of the earlier boot = %v, want flagged unsynced with its stored time", r)
		}
	}
	mustCheck(t, s)
}

// A management command opens the store between the daemon's runs, on the
// same boot or another: readings waiting for repair keep waiting.
func TestKeepBootLeavesRepairAsItWas(t *testing.T) {
	s := mustOpen(t, Options{BootID: "boot-a"})
	mustAppend(t, s, unsynced(1, time.Minute), unsynced(2, 2*time.Minute))
	for _, boot := range []string{"", "boot-z"} {
		s = reopen(t, s, Options{BootID: boot, KeepBoot: true})
		wantRepair(t, s, ClockRepair{Pending: 2, HoldFrom: 1})
	}
	s = reopen(t, s, Options{BootID: "boot-a"})
	wantRepair(t, s, ClockRepair{Pending: 2, HoldFrom: 1})
	if n, err := s.RepairClock(t0); err != nil || n != 2 {
		t.Fatalf("RepairClock = %d, %v; want 2", n, err)
	}
	mustCheck(t, s)
}

func TestUnknownBootKeepsNothingForRepair(t *testing.T) {
	s := mustOpen(t, Options{})
	mustAppend(t, s, unsynced(1, time.Minute))
	wantRepair(t, s, ClockRepair{})
}

func TestAbandonClockRepair(t *testing.T) {
	s := mustOpen(t, Options{BootID: "boot-a"})
	mustAppend(t, s, unsynced(1, time.Minute), unsynced(2, 2*time.Minute))
	if n, err := s.AbandonClockRepair(); err != nil || n != 2 {
		t.Fatalf("AbandonClockRepair = %d, %v; want 2", n, err)
	}
	wantRepair(t, s, ClockRepair{Stranded: 2})
	if ob, _ := s.Outbox(); ob.HoldFrom != 0 {
		t.Errorf("HoldFrom = %d after abandoning, want 0", ob.HoldFrom)
	}
}

func TestRepairOfManyReadingsSpansTransactions(t *testing.T) {
	s := mustOpen(t, Options{BootID: "boot-a"})
	const n = 2*repairChunk + 7
	rs := make([]Reading, n)
	for i := range rs {
		rs[i] = unsynced(i, time.Duration(i+1)*time.Second)
	}
	mustAppend(t, s, rs...)
	// The full policy may delete some pending readings first: their
	// entries go too.
	mustCheckpoint(t, s)
	if got, err := s.deleteFront(frontScan{max: 5, counter: keyRetentionDeleted}); err != nil || got != 5 {
		t.Fatalf("deleteFront = %d, %v", got, err)
	}
	wantRepair(t, s, ClockRepair{Pending: n - 5, HoldFrom: 6})
	got, err := s.RepairClock(time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC))
	if err != nil || got != n-5 {
		t.Fatalf("RepairClock = %d, %v; want %d", got, err, n-5)
	}
	mustCheck(t, s)
}
