package store

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestAppendQueryRoundTrip(t *testing.T) {
	s := mustOpen(t, Options{})
	in := []Reading{
		{Source: "i2c1-0x44", Quantity: "temperature", Value: -12.75, Unit: "Cel", Time: time.Date(1969, 12, 31, 23, 0, 0, 5, time.UTC)},
		{Source: "i2c1-0x44", Quantity: "temperature", Value: 21.5, Unit: "Cel", Time: t0, Clock: ClockUnsynced},
		{Source: "i2c1-0x44", Quantity: "temperature", Value: math.MaxFloat64, Unit: "Cel", Time: t0.Add(time.Nanosecond)},
		{Source: "esp32-kitchen", Quantity: "humidity", Value: 48.25, Unit: "%RH", Time: t0.In(time.FixedZone("CEST", 7200))},
	}
	mustAppend(t, s, in...)
	for i, r := range in {
		if r.Seq != uint64(i+1) {
			t.Errorf("reading %d: seq %d, want %d", i, r.Seq, i+1)
		}
	}
	got, err := s.Readings(Query{Source: "i2c1-0x44", Quantity: "temperature"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Reading{in[0], in[1], in[2]}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Readings:\n got %v\nwant %v", got, want)
	}
	hum, err := s.Readings(Query{Source: "esp32-kitchen", Quantity: "humidity"})
	if err != nil {
		t.Fatal(err)
	}
	if len(hum) != 1 || !hum[0].Time.Equal(t0) || hum[0].Time.Location() != time.UTC {
		t.Errorf("humidity: got %v, want one reading at %v in UTC", hum, t0)
	}
	after, err := s.ReadingsAfter(2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 2 || after[0].Seq != 3 || after[1].Seq != 4 {
		t.Errorf("ReadingsAfter(2): got %v, want seqs 3 and 4", after)
	}
	if got := s.Series(); !reflect.DeepEqual(got, []SeriesKey{{"esp32-kitchen", "humidity"}, {"i2c1-0x44", "temperature"}}) {
		t.Errorf("Series: %v", got)
	}
}

func TestAppendRejectsInvalidReadings(t *testing.T) {
	s := mustOpen(t, Options{})
	long := string(make([]byte, MaxSourceLen+1))
	for name, r := range map[string]Reading{
		"no source":   {Quantity: "temperature", Time: t0},
		"long source": {Source: long, Quantity: "temperature", Time: t0},
		"no quantity": {Source: "a", Time: t0},
		"NaN":         {Source: "a", Quantity: "q", Value: math.NaN(), Time: t0},
		"Inf":         {Source: "a", Quantity: "q", Value: math.Inf(-1), Time: t0},
		"no time":     {Source: "a", Quantity: "q"},
		"NUL in name": {Source: "a\x00b", Quantity: "q", Time: t0},
		"bad UTF-8":   {Source: "a", Quantity: "q\xff", Time: t0},
		"bad clock":   {Source: "a", Quantity: "q", Time: t0, Clock: 7},
		"long unit":   {Source: "a", Quantity: "q", Unit: "abcdefghijklmnopq", Time: t0},
	} {
		t.Run(name, func(t *testing.T) {
			good := reading("a", "q", 0, 1)
			err := s.Append(context.Background(), good, r)
			if !errors.Is(err, ErrInvalidReading) {
				t.Fatalf("Append: %v, want ErrInvalidReading", err)
			}
			if err := s.Enqueue(context.Background(), r); !errors.Is(err, ErrInvalidReading) {
				t.Fatalf("Enqueue: %v, want ErrInvalidReading", err)
			}
		})
	}
	if n := s.Stats().Readings; n != 0 {
		t.Errorf("%d readings stored; a call with an invalid reading must store none", n)
	}
}

func TestSeqMonotonicAcrossReopen(t *testing.T) {
	opts := Options{LocalOnly: true, Now: func() time.Time { return t0.Add(48 * time.Hour) }, Config: Config{Retention: RetentionConfig{MaxAge: time.Hour}}}
	s := mustOpen(t, opts)
	fill(t, s, "a", 10)
	s = reopen(t, s, opts)
	// Retention deletes every reading; the seq must still not be reused.
	if err := s.applyRetention(); err != nil {
		t.Fatal(err)
	}
	if n := s.Stats().Readings; n != 0 {
		t.Fatalf("retention left %d readings, want 0", n)
	}
	s = reopen(t, s, opts)
	r := reading("a", "temperature", 100, 1)
	mustAppend(t, s, r)
	got, err := s.ReadingsAfter(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Seq != 11 {
		t.Fatalf("after reopen: got %v, want one reading with seq 11", got)
	}
}

func TestConcurrentAppendersShareCommits(t *testing.T) {
	s := mustOpen(t, Options{})
	const writers, each = 50, 40
	seqs := make(map[uint64]bool)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				rs := []Reading{reading("dev", "temperature", w*each+i, 1)}
				if err := s.Append(context.Background(), rs...); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seqs[rs[0].Seq] || rs[0].Seq == 0 {
					t.Errorf("seq %d returned twice or unset", rs[0].Seq)
				}
				seqs[rs[0].Seq] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	st := s.Stats()
	total := uint64(writers * each)
	if st.Committed != total || st.LastSeq != total {
		t.Errorf("committed %d, last seq %d; want %d", st.Committed, st.LastSeq, total)
	}
	if st.Commits >= total {
		t.Errorf("%d commits for %d appends: concurrent appends should share commits", st.Commits, total)
	}
	s = reopen(t, s, Options{})
	all, err := s.ReadingsAfter(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(all)) != total {
		t.Fatalf("after reopen %d readings, want %d", len(all), total)
	}
	for i, r := range all {
		if r.Seq != uint64(i+1) {
			t.Fatalf("reading %d has seq %d: seqs must be dense and increasing", i, r.Seq)
		}
	}
	mustCheck(t, s)
}

func TestEnqueueCommitsWithinInterval(t *testing.T) {
	s := mustOpen(t, Options{Config: Config{CommitInterval: 20 * time.Millisecond}})
	if err := s.Enqueue(context.Background(), reading("a", "q", 0, 1), reading("a", "q", 1, 2)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Readings != 2 {
		if time.Now().After(deadline) {
			t.Fatal("queued readings were not committed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCloseCommitsQueuedReadings(t *testing.T) {
	opts := Options{Config: Config{CommitInterval: time.Hour}}
	s := mustOpen(t, opts)
	for i := range 100 {
		if err := s.Enqueue(context.Background(), reading("a", "q", i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	s = reopen(t, s, opts)
	if n := s.Stats().Readings; n != 100 {
		t.Fatalf("%d readings after Close, want all 100 queued ones", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(context.Background(), reading("a", "q", 0, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
}

func TestAppendHonoursContextWhenQueueFull(t *testing.T) {
	fs, wedge := wedgeableFS(t)
	s := mustOpen(t, Options{QueueSize: 1, MaxBatch: 1, LogFS: fs, Config: Config{CommitInterval: time.Millisecond}})
	_, release := wedge(s)
	// The sync hangs; the committer writes a few more readings ahead of it,
	// then stops taking requests, and the one-slot queue fills.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var err error
	for i := 0; i < 20 && err == nil; i++ {
		err = s.Enqueue(ctx, reading("a", "q", i, 1))
	}
	release()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Enqueue into a full queue: %v, want DeadlineExceeded", err)
	}
}

func TestOpenRejectsForeignAndCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte("this is a text file, not a database\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	random := filepath.Join(dir, "random.db")
	buf := make([]byte, 64<<10)
	for i := range buf {
		buf[i] = byte(i*7 + i>>8)
	}
	if err := os.WriteFile(random, buf, 0o600); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "foreign.db")
	db, err := bolt.Open(foreign, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("widgets")); return err }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"text": garbage, "random": random, "foreign bbolt": foreign} {
		t.Run(name, func(t *testing.T) {
			s, err := Open(Options{Path: path})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrNotAStore) {
				t.Fatalf("Open: %v, want ErrNotAStore", err)
			}
			t.Logf("message: %v", err)
		})
	}
}

func TestOpenRefusesSecondProcessAndNewerSchema(t *testing.T) {
	s := mustOpen(t, Options{GatewayID: "fg-site1"})
	if _, err := Open(Options{Path: s.Path()}); !errors.Is(err, ErrInUse) {
		t.Errorf("second Open: %v, want ErrInUse", err)
	}
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Path: path, GatewayID: "fg-other"}); !errors.Is(err, ErrGatewayMismatch) ||
		!strings.Contains(err.Error(), "set gateway.id to") || !strings.Contains(err.Error(), "move the data directory aside") {
		t.Errorf("Open with another gateway id: %v, want ErrGatewayMismatch with the two ways out", err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return putUint(tx.Bucket(bMeta), kSchema, SchemaVersion+1) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Path: path}); !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
}

func TestGatewayIDGeneratedOnce(t *testing.T) {
	s := mustOpen(t, Options{})
	id := s.GatewayID()
	if len(id) != len("fg-")+12 {
		t.Fatalf("gateway id %q", id)
	}
	s = reopen(t, s, Options{})
	if s.GatewayID() != id {
		t.Errorf("gateway id changed across reopen: %q then %q", id, s.GatewayID())
	}
}

func TestMigrationRunsFromOlderSchema(t *testing.T) {
	s := mustOpen(t, Options{})
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return putUint(tx.Bucket(bMeta), kSchema, 0) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ran := false
	migrations[0] = func(*bolt.Tx) error { ran = true; return nil }
	defer delete(migrations, 0)
	s = mustOpen(t, Options{Path: path})
	if !ran {
		t.Error("migration 0→1 did not run")
	}
	var v uint64
	if err := s.view(func(tx *bolt.Tx) error { v = getUint(tx.Bucket(bMeta), kSchema); return nil }); err != nil {
		t.Fatal(err)
	}
	if v != SchemaVersion {
		t.Errorf("schema %d after migration, want %d", v, SchemaVersion)
	}
}

func TestPing(t *testing.T) {
	fs, wedge := wedgeableFS(t)
	s := mustOpen(t, Options{LogFS: fs})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping of a healthy store: %v", err)
	}
	if n := s.Stats().Commits; n != 0 {
		t.Errorf("Ping synced %d times", n)
	}
	mustAppend(t, s, reading("a", "q", 0, 1)) // a ping must not disturb readings
	entered, release := wedge(s)              // the next sync hangs, as on a dying card
	appended := make(chan error, 1)
	go func() { appended <- s.Append(context.Background(), reading("a", "q", 1, 1)) }()
	<-entered
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	err := s.Ping(ctx2)
	release()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ping while the log's sync hangs: %v, want DeadlineExceeded", err)
	}
	mustDo(t, <-appended)
}
