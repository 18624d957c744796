package uplink

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"fieldgate/store"
	"fieldgate/uplink/wire"
)

// Readings taken before the clock synced wait in the store until their times
// are repaired; then they go to the cloud with the repaired times, once.
func TestReadingsHeldForClockRepairGoAfterTheRepair(t *testing.T) {
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "fieldgate.db"), GatewayID: "fg-test", BootID: "boot-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	appendN(t, st, 50, 0) // the backlog of an earlier, synced boot: seqs 1-50
	var rs []store.Reading
	for i := range 30 { // this boot, clock in 1970: seqs 51-80
		mono := time.Duration(20+10*i) * time.Second
		rs = append(rs, store.Reading{Source: "i2c1-0x44", Quantity: "temperature", Value: float64(i), Unit: "Cel",
			Time: time.Unix(0, 0).Add(mono), Clock: store.ClockUnsynced, Mono: mono})
	}
	if err := st.Append(context.Background(), rs...); err != nil {
		t.Fatal(err)
	}

	sk, srv := cloud(t, "secret")
	s := running(t, st, fastOptions(srv.URL))
	// The status says why the rest waits. That no batch can reach a held
	// reading is the store's rule (its model test, store/model_test.go):
	// here, nothing past seq 50 was ever recorded for sending.
	waitFor(t, 10*time.Second, func() bool { u := s.Status(); return u.State == "held" && u.HeldForClock == 30 })
	if ob, _ := st.Outbox(); ob.Acked != 50 || len(ob.Batches) != 0 {
		t.Fatalf("outbox %+v: want 50 acknowledged and no batch recorded past them", ob)
	}
	if n := len(sk.Readings()); n != 50 {
		t.Fatalf("the cloud got %d readings before the clock synced, want the 50 synced ones", n)
	}

	bootWall := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	if n, err := st.RepairClock(bootWall); err != nil || n != 30 {
		t.Fatalf("RepairClock = %d, %v", n, err)
	}
	drained(t, st, 10*time.Second)
	exactlyOnce(t, st, sk)
	got := sk.Readings()
	for i := range 30 {
		rb := got[wire.ReadingID("fg-test", st.Incarnation(), uint64(51+i))]
		want := bootWall.Add(time.Duration(20+10*i) * time.Second).Format(time.RFC3339Nano)
		if rb.Time != want || rb.Clock != "synced" {
			t.Errorf("reading %d reached the cloud at %s (%s), want %s synced", 51+i, rb.Time, rb.Clock, want)
		}
	}
}
