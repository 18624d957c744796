package store

import (
	"errors"
	"testing"
)

func TestOutboxCursorAdvancesOverContiguousPrefix(t *testing.T) {
	s := mustOpen(t, Options{})
	fill(t, s, "a", 100)
	for _, b := range [][2]uint64{{1, 10}, {11, 20}, {21, 30}, {41, 50}} {
		mustRecord(t, s, b[0], b[1])
	}
	// A new batch goes around what is recorded: asked for 5-45 it takes
	// only the free range 31-40.
	b, rs, next, err := s.FormBatch(5, 45, BatchLimits{})
	mustDo(t, err)
	if b.First != 31 || b.Last != 40 || len(rs) != 10 || next != 41 {
		t.Fatalf("FormBatch(5, 45) = %+v with %d readings, next %d; want 31-40, next 41", b, len(rs), next)
	}
	if b, _, next, _ := s.FormBatch(41, 50, BatchLimits{}); b != (Batch{}) || next != 51 {
		t.Fatalf("FormBatch over a recorded range = %+v, next %d; want nothing, next 51", b, next)
	}
	cursor := func() uint64 {
		t.Helper()
		st, err := s.Outbox()
		if err != nil {
			t.Fatal(err)
		}
		return st.Acked
	}
	// Acks out of order: the cursor moves only over a contiguous prefix.
	mustDo(t, s.AckBatch(11))
	if c := cursor(); c != 0 {
		t.Fatalf("cursor %d after acking 11-20 only, want 0", c)
	}
	mustDo(t, s.AckBatch(1))
	if c := cursor(); c != 20 {
		t.Fatalf("cursor %d after acking 1-10 and 11-20, want 20", c)
	}
	// A dead letter is passed by the cursor but keeps its readings listed.
	mustDo(t, s.DeadLetterBatch(21, 400, "bad reading"))
	if c := cursor(); c != 30 {
		t.Fatalf("cursor %d after dead-lettering 21-30, want 30", c)
	}
	// 31-40 is not acknowledged: acking 41-50 must not jump it.
	mustDo(t, s.AckBatch(41))
	if c := cursor(); c != 30 {
		t.Fatalf("cursor %d jumped the unacknowledged 31-40", c)
	}
	mustDo(t, s.AckBatch(31))
	if c := cursor(); c != 50 {
		t.Fatalf("cursor %d, want 50", c)
	}
	st, err := s.Outbox()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Batches) != 0 || len(st.DeadLetters) != 1 || st.DeadLetters[0].First != 21 || st.DeadLetters[0].Last != 30 || st.DeadLetters[0].Status != 400 {
		t.Fatalf("outbox state %+v", st)
	}
	// Retention of delivered readings spares the dead letter's own
	// readings (they wait for a retry), not all that was delivered after.
	mustCheckpoint(t, s) // retention works on what reached bbolt
	if _, err := s.deleteUploaded(1000); err != nil {
		t.Fatal(err)
	}
	left, err := s.ReadingsBetween(1, 50)
	mustDo(t, err)
	if len(left) != 10 || left[0].Seq != 21 || left[9].Seq != 30 {
		t.Errorf("after retention %d readings are left (%v…), want the dead letter's 21-30", len(left), left[:min(1, len(left))])
	}
	// A successful retry removes the dead letter.
	mustDo(t, s.AckBatch(21))
	if st, _ := s.Outbox(); len(st.DeadLetters) != 0 {
		t.Errorf("dead letters after retry: %+v", st.DeadLetters)
	}
	if err := s.AckBatch(77); !errors.Is(err, ErrNotFound) {
		t.Errorf("AckBatch of an unknown batch: %v, want ErrNotFound", err)
	}
}

func TestDeadLettersRequeuedAndDiscarded(t *testing.T) {
	s := mustOpen(t, Options{})
	fill(t, s, "a", 40)
	for first := uint64(1); first <= 31; first += 10 {
		mustRecord(t, s, first, first+9)
	}
	mustDo(t, s.AckBatch(1))
	mustDo(t, s.DeadLetterBatch(11, 422, "bad"))
	mustDo(t, s.DeadLetterBatch(21, 422, "bad"))
	mustDo(t, s.AckBatch(31))

	// Discarding one counts its readings as dropped for good.
	mustDo(t, s.DiscardDeadLetter(21))
	if err := s.DiscardDeadLetter(21); !errors.Is(err, ErrNotFound) {
		t.Errorf("discarding twice: %v, want ErrNotFound", err)
	}
	dropped, _, err := s.Removed()
	mustDo(t, err)
	if got := dropped[reasonDeadLetterDiscarded]; got != 10 {
		t.Errorf("dropped %s = %d, want 10 (all: %v)", reasonDeadLetterDiscarded, got, dropped)
	}

	// Requeued, the other is a batch again, below the cursor; its ack
	// removes it without moving the cursor back.
	n, err := s.RequeueDeadLetters()
	mustDo(t, err)
	ob, err := s.Outbox()
	mustDo(t, err)
	if n != 1 || len(ob.DeadLetters) != 0 || len(ob.Batches) != 1 || ob.Batches[0].First != 11 || ob.Batches[0].Last != 20 || ob.Acked != 40 {
		t.Fatalf("after requeue (%d): %+v", n, ob)
	}
	mustDo(t, s.AckBatch(11))
	ob, err = s.Outbox()
	mustDo(t, err)
	if len(ob.Batches) != 0 || len(ob.DeadLetters) != 0 || ob.Acked != 40 {
		t.Fatalf("after the requeued batch's ack: %+v", ob)
	}
	// Retention now may delete all: nothing waits.
	mustCheckpoint(t, s)
	_, err = s.deleteUploaded(1000)
	mustDo(t, err)
	if left, err := s.ReadingsBetween(1, 40); err != nil || len(left) != 0 {
		t.Errorf("after retention %d readings left (%v)", len(left), err)
	}
}

func TestOutboxSurvivesReopen(t *testing.T) {
	s := mustOpen(t, Options{})
	fill(t, s, "a", 20)
	mustRecord(t, s, 1, 10)
	mustRecord(t, s, 11, 20)
	mustDo(t, s.AckBatch(1))
	s = reopen(t, s, Options{})
	st, err := s.Outbox()
	if err != nil {
		t.Fatal(err)
	}
	if st.Acked != 10 || len(st.Batches) != 1 || st.Batches[0].First != 11 || st.Batches[0].Last != 20 || st.Batches[0].Acked {
		t.Fatalf("after reopen: %+v", st)
	}
}

func mustDo(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func TestSplitBatch(t *testing.T) {
	s := mustOpen(t, Options{})
	fill(t, s, "a", 100)
	mustRecord(t, s, 1, 100)
	mustDo(t, s.SplitBatch(1, 40))
	st, err := s.Outbox()
	mustDo(t, err)
	if len(st.Batches) != 2 || st.Batches[0].Last != 40 || st.Batches[1].First != 41 || st.Batches[1].Last != 100 {
		t.Fatalf("after split: %+v", st.Batches)
	}
	for _, bad := range []uint64{0, 100, 200} {
		if err := s.SplitBatch(41, bad); err == nil {
			t.Errorf("split of 41-100 at %d accepted", bad)
		}
	}
	mustDo(t, s.AckBatch(41))
	mustDo(t, s.AckBatch(1))
	if st, _ := s.Outbox(); st.Acked != 100 || len(st.Batches) != 0 {
		t.Fatalf("after acking both halves: %+v", st)
	}
}

// mustRecord records the batch first-last, which must hold free readings.
func mustRecord(tb testing.TB, s *Store, first, last uint64) {
	tb.Helper()
	b, _, _, err := s.FormBatch(first, last, BatchLimits{})
	if err != nil || b.First != first || b.Last != last {
		tb.Fatalf("FormBatch(%d, %d) = %+v, %v", first, last, b, err)
	}
}

// TestCursorCrossesGapsLeftByDrops is the long-offline, full-disk gateway:
// drop_oldest deletes readings past a batch in flight. The next batch must
// own the gap, and the cursor must pass it once the cloud acknowledges
// both, so that retention and the backlog count keep working.
func TestCursorCrossesGapsLeftByDrops(t *testing.T) {
	s := mustOpen(t, Options{})
	fill(t, s, "a", 300)
	mustRecord(t, s, 1, 100) // in flight
	mustCheckpoint(t, s)
	if n, err := s.deleteOldestUnuploaded(150); err != nil || n != 150 {
		t.Fatalf("drop_oldest deleted %d: %v", n, err) // 101-250 go, the batch stays
	}
	b, rs, next, err := s.FormBatch(101, 300, BatchLimits{MaxReadings: 20})
	mustDo(t, err)
	if b.First != 101 || b.Last != 270 || len(rs) != 20 || rs[0].Seq != 251 || next != 271 {
		t.Fatalf("after the drop FormBatch = %+v (%d readings from %d), next %d; want 101-270 owning the gap", b, len(rs), rs[0].Seq, next)
	}
	st, err := s.Outbox()
	mustDo(t, err)
	if st.Unsent != 150 {
		t.Errorf("unsent %d, want the 100 in flight and the 50 stored after the gap", st.Unsent)
	}
	mustDo(t, s.AckBatch(101))
	mustDo(t, s.AckBatch(1))
	mustRecord(t, s, 271, 300)
	mustDo(t, s.AckBatch(271))
	if st, _ = s.Outbox(); st.Acked != 300 || st.Unsent != 0 || len(st.Batches) != 0 {
		t.Fatalf("outbox after acking everything: %+v; the cursor must cross the gap", st)
	}
	// Sequence numbers without readings that no batch owns (dropped
	// before any batch reached them) are passed too.
	fill(t, s, "b", 50) // 301-350
	mustCheckpoint(t, s)
	if n, err := s.deleteUploaded(1000); err != nil || n != 150 {
		t.Fatalf("retention deleted %d: %v", n, err)
	}
	if n, err := s.deleteOldestUnuploaded(10); err != nil || n != 10 {
		t.Fatalf("drop_oldest deleted %d: %v", n, err) // 301-310
	}
	mustRecord(t, s, 311, 350)
	mustDo(t, s.AckBatch(311))
	if st, _ = s.Outbox(); st.Acked != 350 || st.Unsent != 0 {
		t.Fatalf("outbox %+v, want the cursor at 350", st)
	}
}
