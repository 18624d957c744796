package store

import (
	"errors"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestOutboxCursorAdvancesOverContiguousPrefix(t *testing.T) {
	s := mustOpen(t, Options{})
	fill(t, s, "a", 100)
	for _, b := range [][2]uint64{{1, 10}, {11, 20}, {21, 30}, {41, 50}} {
		if err := s.RecordBatch(b[0], b[1]); err != nil {
			t.Fatalf("RecordBatch %v: %v", b, err)
		}
	}
	for name, b := range map[string][2]uint64{
		"overlap":      {5, 12},
		"inside":       {22, 23},
		"past the end": {95, 101},
		"reversed":     {60, 59},
		"zero":         {0, 3},
	} {
		if err := s.RecordBatch(b[0], b[1]); !errors.Is(err, ErrOverlap) {
			t.Errorf("%s %v: %v, want ErrOverlap", name, b, err)
		}
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
	// 31-40 was never recorded: acking 41-50 must not jump the gap.
	mustDo(t, s.AckBatch(41))
	if c := cursor(); c != 30 {
		t.Fatalf("cursor %d jumped the unrecorded gap 31-40", c)
	}
	mustDo(t, s.RecordBatch(31, 40))
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
	// Retention may not touch the dead letter's readings: the uploaded
	// limit stops right before it.
	var limit uint64
	mustDo(t, s.view(func(tx *bolt.Tx) error { limit = s.uploadedLimit(tx); return nil }))
	if limit != 20 {
		t.Errorf("uploaded limit %d, want 20 (the dead letter 21-30 is not delivered)", limit)
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

func TestOutboxSurvivesReopen(t *testing.T) {
	s := mustOpen(t, Options{})
	fill(t, s, "a", 20)
	mustDo(t, s.RecordBatch(1, 10))
	mustDo(t, s.RecordBatch(11, 20))
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
	mustDo(t, s.RecordBatch(1, 100))
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
