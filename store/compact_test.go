package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestCompactionKeepsEveryReading(t *testing.T) {
	now := t0.Add(30 * 24 * time.Hour)
	opts := Options{LocalOnly: true, Now: func() time.Time { return now }, CompactMinBytes: 1 << 20, Config: Config{Retention: RetentionConfig{MaxAge: 24 * time.Hour}}}
	s := mustOpen(t, opts)
	fill(t, s, "old", 60000)
	keep := make([]Reading, 3000)
	for i := range keep {
		keep[i] = Reading{Source: "new", Quantity: "humidity", Value: float64(i), Unit: "%RH", Time: now.Add(-time.Duration(i) * time.Second)}
	}
	mustAppend(t, s, keep...)
	mustCheckpoint(t, s) // retention works on what reached bbolt
	mustDo(t, s.applyRetention())
	if n := s.Stats().Readings; n != int64(len(keep)) {
		t.Fatalf("%d readings after retention, want %d", n, len(keep))
	}
	before := s.Stats().FileBytes

	// Reopen: Open compacts a file that is mostly free pages.
	s = reopen(t, s, opts)
	after := s.Stats().FileBytes
	if after*2 > before {
		t.Errorf("file %d bytes after compaction, was %d: expected it to shrink by more than half", after, before)
	}
	if _, err := os.Stat(s.Path() + ".compact"); !os.IsNotExist(err) {
		t.Errorf("temporary compaction file left behind: %v", err)
	}
	got, err := s.ReadingsAfter(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(keep) {
		t.Fatalf("%d readings after compaction, want %d", len(got), len(keep))
	}
	for i, r := range got {
		w := keep[i]
		if r.Seq != w.Seq || r.Value != w.Value || !r.Time.Equal(w.Time) || r.Source != w.Source || r.Unit != w.Unit {
			t.Fatalf("reading %d changed by compaction: %v, want %v", i, r, w)
		}
	}
	if n, _ := s.Count(Query{Source: "new", Quantity: "humidity"}); n != len(keep) {
		t.Errorf("index holds %d after compaction, want %d", n, len(keep))
	}
	mustCheck(t, s)
	// The sequence continues after compaction.
	r := Reading{Source: "new", Quantity: "humidity", Value: 1, Time: now}
	rs := []Reading{r}
	mustAppend(t, s, rs...)
	if rs[0].Seq != 63001 {
		t.Errorf("seq after compaction %d, want 63001", rs[0].Seq)
	}
	// And an online compaction (no reopen) is safe too.
	mustDo(t, s.Compact())
	mustAppend(t, s, r)
	if n := s.Stats().Readings; n != int64(len(keep))+2 {
		t.Errorf("%d readings after online compaction, want %d", n, len(keep)+2)
	}
	mustCheck(t, s)
}

// TestCompactionLetsIngestAndPingThrough blocks a compaction at the swap
// (the file is closed, the copy not yet open): appends are acknowledged and
// Ping answers meanwhile, since neither touches the file.
func TestCompactionLetsIngestAndPingThrough(t *testing.T) {
	swapping, resume := make(chan struct{}), make(chan struct{})
	s := mustOpen(t, Options{})
	fill(t, s, "a", 1000)
	mustCheckpoint(t, s)
	s.opts.openBolt = func(path string, o Options) (*bolt.DB, error) {
		close(swapping)
		<-resume
		return openBolt(path, o)
	}
	compacted := make(chan error, 1)
	go func() { compacted <- s.Compact() }()
	<-swapping
	mustAppend(t, s, reading("b", "temperature", 0, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mustDo(t, s.Ping(ctx))
	close(resume)
	mustDo(t, <-compacted)
	if n, _ := s.Count(Query{Source: "b", Quantity: "temperature"}); n != 1 {
		t.Errorf("the reading appended during compaction: %d stored", n)
	}
	mustCheck(t, s)
}

// TestFailedReopenAfterCompactionFailsTheStore: if the compacted file
// cannot be opened, every read and write reports the store failed (not a
// panic on a closed bbolt handle), Ping fails and Failed's channel closes so
// that the daemon exits and is restarted, and Close still works.
func TestFailedReopenAfterCompactionFailsTheStore(t *testing.T) {
	s, err := Open(Options{Path: filepath.Join(t.TempDir(), "fieldgate.db")})
	mustDo(t, err)
	fill(t, s, "a", 100)
	mustCheckpoint(t, s)
	s.opts.openBolt = func(string, Options) (*bolt.DB, error) { return nil, errors.New("EIO") }
	if err := s.Compact(); err == nil {
		t.Fatal("Compact succeeded without reopening the file")
	}
	if _, err := s.Readings(Query{Source: "a", Quantity: "temperature"}); !errors.Is(err, ErrFailed) {
		t.Errorf("Readings after a failed reopen: %v, want ErrFailed", err)
	}
	if err := s.Ping(context.Background()); !errors.Is(err, ErrFailed) {
		t.Errorf("Ping after a failed reopen: %v, want ErrFailed", err)
	}
	if err := s.Append(context.Background(), reading("a", "temperature", 200, 1)); !errors.Is(err, ErrFailed) {
		t.Errorf("Append after a failed reopen: %v, want ErrFailed", err)
	}
	select {
	case <-s.Failed():
	default:
		t.Error("Failed's channel is open")
	}
	if st := s.Stats(); !errors.Is(st.Failed, ErrFailed) { // must not touch the closed file
		t.Errorf("Stats.Failed %v", st.Failed)
	}
	if err := s.Close(); err == nil {
		t.Error("Close after a failed reopen reported no error, but the final checkpoint could not run")
	}
}

// TestCompactionCopyGivesWay: the copy holds the file against checkpoints,
// so it stops (ErrCompactionYielded) as soon as it is asked to, and a
// copy left alone holds every key, bucket and sequence of the original.
func TestCompactionCopyGivesWay(t *testing.T) {
	s := mustOpen(t, Options{})
	fill(t, s, "a", 10_000)
	mustCheckpoint(t, s)
	for _, stopAt := range []int{1, 0} {
		dst, err := bolt.Open(filepath.Join(t.TempDir(), "copy.db"), 0o600, nil)
		mustDo(t, err)
		asked := 0
		err = copyDB(dst, s.db, 1<<20, func() bool { asked++; return asked == stopAt })
		switch {
		case stopAt == 1 && !errors.Is(err, ErrCompactionYielded):
			t.Fatalf("copy asked to stop: %v", err)
		case stopAt == 0:
			mustDo(t, err)
			mustDo(t, s.view(func(src *bolt.Tx) error {
				return dst.View(func(tx *bolt.Tx) error {
					for _, name := range allBuckets {
						if a, b := src.Bucket(name).Stats().KeyN, tx.Bucket(name).Stats().KeyN; a != b || src.Bucket(name).Sequence() != tx.Bucket(name).Sequence() {
							t.Errorf("bucket %s: %d keys, copy %d", name, a, b)
						}
					}
					return nil
				})
			}))
		}
		mustDo(t, dst.Close())
	}
}
