package store

import (
	"encoding/binary"
	"sync/atomic"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestLongReadsLetCommitsThrough: a Count over a long series used to hold
// the head's read lock for its whole scan, and the commit leader, which
// needs the write lock to add a synced group, waited for it — with every
// PUBACK behind it. Now reads take short snapshots: commits that begin
// during a long Count end during it.
func TestLongReadsLetCommitsThrough(t *testing.T) {
	s := mustOpen(t, Options{})
	fill(t, s, "long", 200_000)
	mustCheckpoint(t, s)
	fill(t, s, "long", 20_000) // some in the head too
	// epoch is odd while a Count runs: a commit counts if it began and
	// ended in one Count.
	var epoch atomic.Int64
	var stop atomic.Bool
	done := make(chan int)
	go func() {
		n := 0
		for i := 0; !stop.Load(); i++ {
			e := epoch.Load()
			mustAppend(t, s, reading("other", "temperature", i, 1))
			if e%2 == 1 && epoch.Load() == e {
				n++
			}
		}
		done <- n
	}()
	for range 5 {
		epoch.Add(1)
		n, err := s.Count(Query{Source: "long", Quantity: "temperature"})
		epoch.Add(1)
		mustDo(t, err)
		if n != 220_000 {
			t.Fatalf("Count = %d", n)
		}
	}
	stop.Store(true)
	if n := <-done; n < 3 {
		t.Errorf("%d commits began and ended during five counts of 220,000 readings: the count holds them up", n)
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
