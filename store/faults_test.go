package store

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"fieldgate/store/storetest"
	"fieldgate/store/wal"
)

// logSegments returns the paths of the log's segment files, oldest first.
func logSegments(t *testing.T, fs *storetest.CrashFS, s *Store) []string {
	t.Helper()
	names, err := fs.List(s.logOpts.Dir)
	mustDo(t, err)
	var out []string
	for _, n := range names {
		if len(n) == len("0000000000000001.wal") && strings.HasSuffix(n, ".wal") {
			out = append(out, filepath.Join(s.logOpts.Dir, n))
		}
	}
	return out
}

// failSegmentSync makes the next fdatasync of one of the log's segments
// (not a spare being prepared) fail with EIO, as an undervoltage does.
func failSegmentSync(fs *storetest.CrashFS) {
	fs.SetFault(func(op, name string) error {
		if base := filepath.Base(name); op == "sync" && len(base) == len("0000000000000001.wal") && strings.HasSuffix(base, ".wal") {
			fs.SetFault(nil)
			return syscall.EIO
		}
		return nil
	})
}

// TestFailedSyncIsRecoveredWithoutARestart: one failed fdatasync. The
// commit it belonged to is not acknowledged; Ping, as the watchdog and
// readiness use it, fails with ErrLogBroken until the committer has
// recovered the log from the device; then writes go on. Queued readings of
// the failed commit are written again, not dropped; and a power cut after
// all of it keeps every acknowledged reading and never the failed ones.
func TestFailedSyncIsRecoveredWithoutARestart(t *testing.T) {
	fs := storetest.NewCrashFS(rand.New(rand.NewPCG(7, 7)))
	opts := Options{Path: filepath.Join(t.TempDir(), "eio.db"), LogFS: fs.Process(), openBolt: noSyncBolt, anyTiming: true, Config: Config{CommitInterval: time.Hour}}
	s, err := Open(opts)
	mustDo(t, err)
	mustAppend(t, s, reading("a", "temperature", 0, 1), reading("a", "temperature", 1, 2))
	mustDo(t, s.Enqueue(context.Background(), reading("poll", "humidity", 2, 50)))
	failSegmentSync(fs)
	failed := reading("a", "temperature", 3, 3)
	if err := s.Append(context.Background(), failed); !errors.Is(err, ErrLogBroken) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append over a failing sync: %v, want ErrLogBroken and EIO", err)
	}
	if err := s.Ping(context.Background()); !errors.Is(err, ErrLogBroken) {
		t.Fatalf("Ping right after the failure: %v, want ErrLogBroken (health must fail)", err)
	}
	if st := s.Stats(); st.LogBroken == nil {
		t.Error("Stats.LogBroken is nil while the log is broken")
	}
	waitFor(t, func() bool { return s.Ping(context.Background()) == nil })
	if st := s.Stats(); st.LogBroken != nil || st.LogRecoveries != 1 || st.Failed != nil {
		t.Errorf("after recovery: broken %v, recoveries %d, failed %v", st.LogBroken, st.LogRecoveries, st.Failed)
	}
	after := reading("a", "temperature", 4, 4)
	mustAppend(t, s, after)
	all, err := s.ReadingsAfter(0, 0)
	mustDo(t, err)
	var values []float64
	for _, r := range all {
		values = append(values, r.Value)
	}
	if len(all) != 4 || values[2] != 50 || values[3] != 4 || all[3].Seq <= all[2].Seq {
		t.Fatalf("after recovery the store holds %v: want 1, 2, the carried poll and 4", all)
	}
	if d := s.c.drops.snapshot(); len(d) != 0 {
		t.Errorf("readings counted as dropped: %v; the queued one was written again", d)
	}
	fs.PowerCut()
	s.abandon()
	opts.LogFS = fs.Process()
	s, err = Open(opts)
	mustDo(t, err)
	defer s.Close()
	again, err := s.ReadingsAfter(0, 0)
	mustDo(t, err)
	if len(again) != 4 {
		t.Fatalf("after a power cut: %v, want the same 4", again)
	}
	for i := range again {
		if !sameStored(again[i], all[i]) {
			t.Errorf("reading %d is %v after the cut, %v before", i, again[i], all[i])
		}
	}
}

// TestReplaySyncsBeforeHandingOutSeqs is the process that dies between a
// write and its sync, restarts, and minutes later loses power. Replay used
// to put the dead process's records, still in the page cache, into the
// head; the uplink could send them and the cloud acknowledge them; the cut
// took them back and the next start gave their seqs to new readings. Now
// replay syncs them first: the cut keeps them.
func TestReplaySyncsBeforeHandingOutSeqs(t *testing.T) {
	fs := storetest.NewCrashFS(rand.New(rand.NewPCG(8, 8)))
	opts := Options{Path: filepath.Join(t.TempDir(), "cache.db"), LogFS: fs.Process(), openBolt: noSyncBolt}
	s, err := Open(opts)
	mustDo(t, err)
	mustAppend(t, s, reading("a", "temperature", 0, 1))
	// The next sync hangs; the process dies while it does.
	entered, release := make(chan struct{}, 1), make(chan struct{})
	fs.SetFault(func(op, name string) error {
		if op == "sync" && strings.HasSuffix(name, ".wal") && !strings.Contains(name, "free-") {
			entered <- struct{}{}
			<-release
		}
		return nil
	})
	go func() { _ = s.Append(context.Background(), reading("a", "temperature", 1, 2)) }()
	<-entered
	fs.Crash()
	fs.SetFault(nil)
	close(release)
	s.abandon()

	opts.LogFS = fs.Process()
	s, err = Open(opts)
	mustDo(t, err)
	b, rs, _, err := s.FormBatch(1, ^uint64(0), BatchLimits{})
	mustDo(t, err)
	if len(rs) != 2 {
		t.Fatalf("replay found %v: want the acknowledged reading and the dead process's", rs)
	}
	mustDo(t, s.AckBatch(b.First)) // the cloud has both now
	fs.PowerCut()
	s.abandon()

	opts.LogFS = fs.Process()
	s, err = Open(opts)
	mustDo(t, err)
	defer s.Close()
	mustAppend(t, s, reading("a", "temperature", 2, 3))
	all, err := s.ReadingsAfter(0, 0)
	mustDo(t, err)
	if len(all) != 3 || all[1].Value != 2 || all[2].Seq != 3 {
		t.Fatalf("after the power cut: %v; the reading the cloud acknowledged must be there, the new one at seq 3", all)
	}
}

// TestSeqsStartAboveWhatTheUplinkRecorded: if the log lost readings the
// uplink had already recorded in a batch (a bit flipped in the card), new
// readings never take their seqs: the cloud would drop them as duplicates.
func TestSeqsStartAboveWhatTheUplinkRecorded(t *testing.T) {
	fs := storetest.NewCrashFS(rand.New(rand.NewPCG(9, 9)))
	opts := Options{Path: filepath.Join(t.TempDir(), "floor.db"), LogFS: fs.Process(), openBolt: noSyncBolt}
	s, err := Open(opts)
	mustDo(t, err)
	for i := range 5 {
		mustAppend(t, s, reading("a", "temperature", i, float64(i)))
	}
	b, _, _, err := s.FormBatch(1, ^uint64(0), BatchLimits{})
	mustDo(t, err)
	// The segment's epoch rots: none of its frames checks out any more.
	seg := logSegments(t, fs, s)[0]
	fs.FlipBit(seg, 20, 0)
	fs.Crash()
	s.abandon()

	opts.LogFS = fs.Process()
	s, err = Open(opts)
	mustDo(t, err)
	defer s.Close()
	if st := s.Stats(); st.LastSeq < b.Last || st.LogCorrupt != 1 || len(st.Quarantined) != 1 {
		t.Fatalf("stats %+v: want the seqs above batch %d-%d, the header reported and the file quarantined", st, b.First, b.Last)
	}
	r := reading("a", "temperature", 9, 9)
	mustAppend(t, s, r)
	if all, _ := s.ReadingsAfter(0, 0); len(all) != 1 || all[0].Seq <= b.Last {
		t.Fatalf("the new reading got %v: want a seq above %d", all, b.Last)
	}
}

// TestCorruptionIsCountedOnceAndNamed: a bit flipped in a synced record
// costs that record; Stats names the file and the seqs, counts it once
// however often the segment is replayed, and the file is quarantined when
// the checkpoint releases it.
func TestCorruptionIsCountedOnceAndNamed(t *testing.T) {
	fs := storetest.NewCrashFS(rand.New(rand.NewPCG(10, 10)))
	opts := Options{Path: filepath.Join(t.TempDir(), "rot.db"), LogFS: fs.Process(), openBolt: noSyncBolt}
	s, err := Open(opts)
	mustDo(t, err)
	for i := range 10 {
		mustAppend(t, s, reading("a", "temperature", i, float64(i)))
	}
	seg := logSegments(t, fs, s)[0]
	b := fs.DeviceBytes(seg)
	off := int64(40) // the segment header; then frames of a 32-byte head
	for range 3 {
		off += 32 + int64(binary.BigEndian.Uint32(b[off+4:]))
	}
	fs.FlipBit(seg, off+40, 2) // in the payload of the fourth record: seq 4
	fs.Crash()
	s.abandon()
	for open := range 2 {
		opts.LogFS = fs.Process()
		s, err = Open(opts)
		mustDo(t, err)
		st := s.Stats()
		if st.LogCorrupt != 1 || st.LostReadings != 1 || st.Readings != 9 || len(st.LogDamage) != 1 {
			t.Fatalf("open %d: corrupt %d, lost %d, readings %d, damage %+v", open, st.LogCorrupt, st.LostReadings, st.Readings, st.LogDamage)
		}
		if d := st.LogDamage[0]; d.Kind != wal.DamageCorrupt || d.File != seg || d.First != 4 || d.Last != 4 {
			t.Errorf("damage %+v: want corrupt, %s, seq 4", d, seg)
		}
		fs.Crash()
		s.abandon()
	}
	opts.LogFS = fs.Process()
	s, err = Open(opts)
	mustDo(t, err)
	defer s.Close()
	mustCheckpoint(t, s)
	if st := s.Stats(); len(st.Quarantined) != 1 || !strings.Contains(st.Quarantined[0], "quarantine-") {
		t.Errorf("quarantined %v after the checkpoint", st.Quarantined)
	}
}

// TestUndecodableRecordDoesNotStopOpen: a record whose checksum is right
// but whose content does not decode used to stop the daemon from starting.
// It is reported and skipped.
func TestUndecodableRecordDoesNotStopOpen(t *testing.T) {
	fs := storetest.NewCrashFS(rand.New(rand.NewPCG(11, 11)))
	opts := Options{Path: filepath.Join(t.TempDir(), "bad.db"), LogFS: fs.Process(), openBolt: noSyncBolt}
	s, err := Open(opts)
	mustDo(t, err)
	mustAppend(t, s, reading("a", "temperature", 0, 1))
	logOpts := s.logOpts
	fs.Crash()
	s.abandon()
	logOpts.FS = fs.Process()
	l, err := wal.Open(logOpts)
	mustDo(t, err)
	_, err = l.Replay(0, func(uint64, uint64, []byte) error { return nil })
	mustDo(t, err)
	mustDo(t, l.Append(2, 2, []byte{logFormat, 0xff, 0xff}))
	mustDo(t, l.Flush())
	mustDo(t, l.Sync())
	mustDo(t, l.Append(3, 3, encodeLogRecord(nil, []Reading{reading("a", "temperature", 3, 3)})))
	mustDo(t, l.Flush())
	mustDo(t, l.Sync())
	mustDo(t, l.Close())

	opts.LogFS = fs.Process()
	s, err = Open(opts)
	mustDo(t, err)
	defer s.Close()
	st := s.Stats()
	if st.Readings != 2 || st.LogCorrupt != 1 || len(st.LogDamage) != 1 || st.LogDamage[0].Kind != wal.DamageRecord {
		t.Fatalf("readings %d, corrupt %d, damage %+v: want 2 readings and the record reported", st.Readings, st.LogCorrupt, st.LogDamage)
	}
}

// TestFailedBoltCommitReopensTheFile: a bbolt commit that fails part way
// (here: the disk fills while it writes its pages) is not rolled back and
// carried on with: the store reopens the file from the disk before
// anything else uses it, and once room is made a checkpoint succeeds and
// bbolt's check passes.
func TestFailedBoltCommitReopensTheFile(t *testing.T) {
	s, _, dir := diskFullStore(t, Options{SegmentSize: 1 << 20})
	fill(t, s, "before", 100)
	mustCheckpoint(t, s)
	var opened atomic.Int32
	s.opts.openBolt = func(path string, o Options) (*bolt.DB, error) {
		opened.Add(1)
		return openBolt(path, o)
	}
	filler := storetest.FillDisk(t, dir)
	fill(t, s, "during", 3000) // durable in the log's preallocated segments
	if err := s.checkpoint(); err == nil {
		t.Fatal("a checkpoint succeeded on a full disk")
	}
	if opened.Load() == 0 {
		t.Fatal("the file was used again after a failed commit without being reopened")
	}
	mustDo(t, os.Remove(filler))
	mustCheckpoint(t, s)
	mustCheck(t, s)
	if st := s.Stats(); st.Failed != nil || st.Readings != 3100 || st.HeadReadings != 0 {
		t.Errorf("after room was made: failed %v, %d readings (%d in the head)", st.Failed, st.Readings, st.HeadReadings)
	}
}
