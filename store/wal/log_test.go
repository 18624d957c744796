package wal_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"fieldgate/store/storetest"
	"fieldgate/store/wal"
)

// payload is the test record for seqs first..last: it names them, so a
// replayed record can be checked against what was written.
func payload(first, last uint64) []byte {
	return fmt.Appendf(nil, "records %d-%d %s", first, last, bytes.Repeat([]byte{'x'}, int(first%97)))
}

type record struct{ first, last uint64 }

func mustOpen(tb testing.TB, o wal.Options) *wal.Log {
	tb.Helper()
	l, err := wal.Open(o)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// replayAll opens the log in o and returns its records above after.
func replayAll(tb testing.TB, o wal.Options, after uint64) (*wal.Log, []record, wal.ReplayInfo) {
	tb.Helper()
	l := mustOpen(tb, o)
	tb.Cleanup(func() { _ = l.Close() }) // tests close it themselves to check errors
	var got []record
	info, err := l.Replay(after, func(first, last uint64, p []byte) error {
		if !bytes.Equal(p, payload(first, last)) {
			return fmt.Errorf("record %d-%d has payload %q", first, last, p)
		}
		got = append(got, record{first, last})
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return l, got, info
}

func mustDo(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// appendN appends n records of k seqs each from next on, flushing after
// each, and returns the next free seq.
func appendN(tb testing.TB, l *wal.Log, next uint64, n, k int) uint64 {
	tb.Helper()
	for range n {
		last := next + uint64(k) - 1
		mustDo(tb, l.Append(next, last, payload(next, last)))
		mustDo(tb, l.Flush())
		next = last + 1
	}
	return next
}

func TestRoundTripAcrossSegmentsAndReuse(t *testing.T) {
	dir := t.TempDir()
	o := wal.Options{Dir: dir, SegmentSize: wal.MinSegmentSize}
	l, got, _ := replayAll(t, o, 0)
	if len(got) != 0 {
		t.Fatalf("new log replayed %v", got)
	}
	next := appendN(t, l, 1, 3000, 2) // ~300 KB: several segments
	mustDo(t, l.Sync())
	if st := l.Stats(); st.Segments < 4 {
		t.Fatalf("stats %+v: want several segments", st)
	}
	mustDo(t, l.Close())

	l, got, info := replayAll(t, o, 0)
	if len(got) != 3000 || got[0] != (record{1, 2}) || got[2999] != (record{5999, 6000}) || info.Last != 6000 || info.Torn+info.Gaps+info.Corrupt != 0 {
		t.Fatalf("replayed %d records (%v … ), info %+v", len(got), got[:min(2, len(got))], info)
	}
	// A checkpoint up to 4000: the segments holding only older records go
	// to the pool and come back as new segments; their stale frames must
	// never be replayed.
	mustDo(t, l.Release(4000))
	before := l.Stats()
	next = appendN(t, l, next, 3000, 2)
	mustDo(t, l.Sync())
	mustDo(t, l.Close())
	if before.Free == 0 {
		t.Errorf("stats after release %+v: no segment kept for reuse", before)
	}
	_, got, info = replayAll(t, o, 4000)
	if got[0].first > 4001 || got[len(got)-1].last != next-1 || info.Last != next-1 || info.Gaps != 0 {
		t.Fatalf("after reuse: replayed %v … %v, info %+v", got[0], got[len(got)-1], info)
	}
	for i := 1; i < len(got); i++ {
		if got[i].first != got[i-1].last+1 {
			t.Fatalf("record %v follows %v", got[i], got[i-1])
		}
	}
}

func TestTornTailIsCutSealedAndReportedOnce(t *testing.T) {
	dir := t.TempDir()
	o := wal.Options{Dir: dir, SegmentSize: wal.MinSegmentSize}
	l, _, _ := replayAll(t, o, 0)
	appendN(t, l, 1, 10, 1)
	mustDo(t, l.Sync())
	mustDo(t, l.Close())
	// Tear the last record: keep its header, garble its payload.
	seg := filepath.Join(dir, "0000000000000001.wal")
	b, err := os.ReadFile(seg)
	mustDo(t, err)
	off := 32
	for range 9 {
		off += 24 + int(binary.BigEndian.Uint32(b[off+4:]))
	}
	b[off+30] ^= 0xff
	mustDo(t, os.WriteFile(seg, b, 0o640))

	l, got, info := replayAll(t, o, 0)
	if len(got) != 9 || info.Torn != 1 || info.Last != 9 {
		t.Fatalf("replayed %d records, info %+v: want 9 and one torn tail", len(got), info)
	}
	appendN(t, l, 10, 5, 1) // seq 10 again: it was never acknowledged
	mustDo(t, l.Sync())
	mustDo(t, l.Close())
	_, got, info = replayAll(t, o, 0)
	if len(got) != 14 || info.Torn != 0 || info.Last != 14 || info.Gaps != 0 {
		t.Fatalf("second replay: %d records, info %+v: want 14, the tail reported once", len(got), info)
	}
}

func TestCorruptHeaderIsSetAside(t *testing.T) {
	dir := t.TempDir()
	o := wal.Options{Dir: dir, SegmentSize: wal.MinSegmentSize}
	l, _, _ := replayAll(t, o, 0)
	appendN(t, l, 1, 3, 1)
	mustDo(t, l.Sync())
	mustDo(t, l.Close())
	seg := filepath.Join(dir, "0000000000000001.wal")
	f, err := os.OpenFile(seg, os.O_WRONLY, 0)
	mustDo(t, err)
	_, err = f.WriteAt([]byte("garbage!"), 0)
	mustDo(t, err)
	mustDo(t, f.Close())
	l, got, info := replayAll(t, o, 0)
	if len(got) != 0 || info.Corrupt != 1 {
		t.Fatalf("replayed %v, info %+v: want nothing and one corrupt segment", got, info)
	}
	// The file goes back to the pool; the preparer may already have made
	// it the next segment 1, under its old name but with a fresh header.
	if b, err := os.ReadFile(seg); err == nil && bytes.HasPrefix(b, []byte("garbage!")) {
		t.Error("the corrupt segment is still in use")
	}
	mustDo(t, l.Close())
	_, got, info = replayAll(t, o, 0)
	if len(got) != 0 || info.Corrupt != 0 {
		t.Errorf("after a reopen: replayed %v, info %+v; the corrupt segment was not set aside", got, info)
	}
}

func TestFailedSyncBreaksTheLog(t *testing.T) {
	fs := storetest.NewCrashFS(rand.New(rand.NewPCG(1, 1)))
	o := wal.Options{Dir: "/wal", SegmentSize: wal.MinSegmentSize, FS: fs}
	l, _, _ := replayAll(t, o, 0)
	appendN(t, l, 1, 1, 1)
	eio := errors.New("EIO")
	fs.SetFault(func(op, _ string) error {
		if op == "sync" {
			return eio
		}
		return nil
	})
	if err := l.Sync(); !errors.Is(err, eio) {
		t.Fatalf("Sync: %v, want EIO", err)
	}
	fs.SetFault(nil)
	if err := l.Sync(); !errors.Is(err, eio) {
		t.Errorf("Sync after a failed sync: %v; the log must stay broken", err)
	}
	mustDo(t, l.Append(2, 2, payload(2, 2)))
	if err := l.Flush(); !errors.Is(err, eio) {
		t.Errorf("Flush after a failed sync: %v", err)
	}
	if st := l.Stats(); !errors.Is(st.Err, eio) {
		t.Errorf("Stats.Err %v", st.Err)
	}
}

func TestFullDiskAtRotationWritesNothingAndRecovers(t *testing.T) {
	fs := storetest.NewCrashFS(rand.New(rand.NewPCG(2, 2)))
	o := wal.Options{Dir: "/wal", SegmentSize: wal.MinSegmentSize, MaxFree: 1, FS: fs}
	l, _, _ := replayAll(t, o, 0)
	var full atomic.Bool
	fs.SetFault(func(op, _ string) error {
		if op == "create" && full.Load() {
			return syscall.ENOSPC
		}
		return nil
	})
	full.Store(true)
	// Fill the first segment; the background preparer cannot make a spare.
	next, err := uint64(1), error(nil)
	for err == nil {
		mustDo(t, l.Append(next, next, payload(next, next)))
		if err = l.Flush(); err == nil {
			next++
		}
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Flush on a full disk: %v, want ENOSPC", err)
	}
	if l.Buffered() == 0 {
		t.Fatal("the refused record was dropped from the buffer")
	}
	if st := l.Stats(); !errors.Is(st.Err, syscall.ENOSPC) {
		t.Errorf("Stats.Err %v, want ENOSPC", st.Err)
	}
	full.Store(false)
	mustDo(t, l.Flush())
	mustDo(t, l.Sync())
	mustDo(t, l.Close())
	_, got, info := replayAll(t, o, 0)
	if uint64(len(got)) != next || info.Last != next {
		t.Fatalf("replayed %d records up to %d, want %d", len(got), info.Last, next)
	}
}

// TestPowerCuts runs thousands of simulated power cuts: every record whose
// Sync returned survives; an unsynced one is either whole or absent; what
// replays is a gap-free run of whole records; writing resumes after each.
func TestPowerCuts(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	fs := storetest.NewCrashFS(rand.New(rand.NewPCG(seed, 4)))
	o := wal.Options{Dir: "/wal", SegmentSize: wal.MinSegmentSize, FS: fs}
	cuts := 2000
	if testing.Short() {
		cuts = 200
	}
	var synced, last, ckpt uint64 // highest seq synced; highest replayed; checkpointed
	for cut := range cuts {
		l, got, info := replayAll(t, o, ckpt)
		if info.Last < synced {
			t.Fatalf("cut %d (seed %d): replay ends at %d, but %d was synced", cut, seed, info.Last, synced)
		}
		for i := 1; i < len(got); i++ {
			if got[i].first != got[i-1].last+1 {
				t.Fatalf("cut %d (seed %d): record %v follows %v", cut, seed, got[i], got[i-1])
			}
		}
		if info.Gaps != 0 || info.Corrupt != 0 {
			t.Fatalf("cut %d (seed %d): info %+v", cut, seed, info)
		}
		last = info.Last
		synced = last // what replayed is on disk now
		next := last + 1
		for range rng.IntN(40) {
			k := uint64(1 + rng.IntN(5))
			mustDo(t, l.Append(next, next+k-1, payload(next, next+k-1)))
			next += k
			if rng.IntN(3) == 0 {
				mustDo(t, l.Flush())
			}
			if rng.IntN(6) == 0 {
				mustDo(t, l.Flush())
				mustDo(t, l.Sync())
				synced = next - 1
			}
		}
		if rng.IntN(3) == 0 { // a checkpoint of most of what is synced
			ckpt = max(ckpt, synced-min(synced, uint64(rng.IntN(100))))
			mustDo(t, l.Release(ckpt))
		}
		fs.PowerCut()
		_ = l.Close() // its handles are dead; Close stops the preparer
	}
	t.Logf("%d power cuts; log ends at seq %d", cuts, last)
}

func TestFlushSpanningManySegments(t *testing.T) {
	o := wal.Options{Dir: t.TempDir(), SegmentSize: wal.MinSegmentSize}
	l, _, _ := replayAll(t, o, 0)
	big := bytes.Repeat([]byte("r"), 20<<10)
	for i := uint64(1); i <= 20; i++ { // 400 KiB in one flush: seven segments
		mustDo(t, l.Append(i, i, big))
	}
	mustDo(t, l.Flush())
	mustDo(t, l.Sync())
	mustDo(t, l.Close())
	l = mustOpen(t, o)
	defer l.Close()
	n := 0
	info, err := l.Replay(0, func(first, last uint64, p []byte) error {
		n++
		if first != uint64(n) || !bytes.Equal(p, big) {
			return fmt.Errorf("record %d: %d-%d", n, first, last)
		}
		return nil
	})
	if err != nil || n != 20 || info.Last != 20 {
		t.Fatalf("replayed %d records up to %d: %v", n, info.Last, err)
	}
}
