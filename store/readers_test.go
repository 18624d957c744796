package store

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestLongReadsLetCommitsThrough: a Count over a long series used to hold
// the head's read lock for its whole scan, and the commit leader, which
// needs the write lock to add a synced group, waited for it — with every
// PUBACK behind it. Now reads take short snapshots: between two of them a
// commit goes through. The test commits from inside a Count, between its
// snapshots: if the Count held a lock across them, the commit could not
// end.
func TestLongReadsLetCommitsThrough(t *testing.T) {
	s := mustOpen(t, Options{})
	fill(t, s, "long", 200_000)
	mustCheckpoint(t, s)
	fill(t, s, "long", 20_000) // some in the head too
	commits := 0
	testHookBetweenChunks = func() {
		done := make(chan error, 1)
		go func() { done <- s.Append(context.Background(), reading("other", "temperature", commits, 1)) }()
		select {
		case err := <-done:
			mustDo(t, err)
			commits++
		case <-time.After(time.Minute):
			t.Fatal("a commit made between two snapshots of a Count did not end: the Count holds it up")
		}
	}
	defer func() { testHookBetweenChunks = nil }()
	n, err := s.Count(Query{Source: "long", Quantity: "temperature"})
	mustDo(t, err)
	if n != 220_000 || commits < 50 {
		t.Fatalf("Count = %d with %d commits during it; want 220,000 with one between every two of its %d-reading snapshots", n, commits, walkChunk)
	}
}

// TestReaderFindsASeriesCheckpointedButNotYetPublished: a checkpoint adds
// new series to the cache only after its commit; a reader whose
// transaction began in between finds them in the file.
func TestReaderFindsASeriesCheckpointedButNotYetPublished(t *testing.T) {
	s := mustOpen(t, Options{})
	r := reading("fresh", "temperature", 0, 21.5)
	r.Seq = 1
	st := s.series.begin()
	mustDo(t, s.update(func(tx *bolt.Tx) error {
		sid, err := st.id(tx, SeriesKey{r.Source, r.Quantity})
		if err != nil {
			return err
		}
		if err := tx.Bucket(bReadings).Put(seqKey(1), encodeReading(nil, sid, &r)); err != nil {
			return err
		}
		if err := tx.Bucket(bIndex).Put(indexKey(sid, r.Time, 1), indexValue(&r)); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put(kLastSeq, binary.BigEndian.AppendUint64(nil, 1))
	})) // and no st.publish(): the reader comes first
	got, err := s.Readings(Query{Source: "fresh", Quantity: "temperature"})
	mustDo(t, err)
	if len(got) != 1 || !sameStored(got[0], r) {
		t.Fatalf("Readings = %v, want %v", got, r)
	}
	if latest, ok, err := s.Latest(SeriesKey{"fresh", "temperature"}); err != nil || !ok || latest.Value != 21.5 {
		t.Errorf("Latest = %v, %v, %v", latest, ok, err)
	}
}
