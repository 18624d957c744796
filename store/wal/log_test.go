package wal_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

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
	if len(got) != 3000 || got[0] != (record{1, 2}) || got[2999] != (record{5999, 6000}) || info.Last != 6000 || info.Torn+info.Gaps+info.Corrupt+info.Salvaged != 0 {
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
	if got[0].first > 4001 || got[len(got)-1].last != next-1 || info.Last != next-1 || info.Gaps+info.Torn+info.Corrupt != 0 {
		t.Fatalf("after reuse: replayed %v … %v, info %+v", got[0], got[len(got)-1], info)
	}
	for i := 1; i < len(got); i++ {
		if got[i].first != got[i-1].last+1 {
			t.Fatalf("record %v follows %v", got[i], got[i-1])
		}
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

// TestReplaysAVersion1Log: a gateway upgraded with records still in a log
// of the first format (unsalted, 24-byte frame heads) replays them, then
// writes in the current format in a new segment.
func TestReplaysAVersion1Log(t *testing.T) {
	dir := t.TempDir()
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	seg := append([]byte("FGWAL\x00\x00\x01"), binary.BigEndian.AppendUint64(nil, 1)...)
	seg = binary.BigEndian.AppendUint32(seg, crc32.Checksum(seg, castagnoli))
	seg = append(seg, make([]byte, 12)...)
	for i := uint64(1); i <= 3; i++ {
		f := binary.BigEndian.AppendUint32(nil, uint32(len(payload(i, i))))
		f = binary.BigEndian.AppendUint64(f, i)
		f = binary.BigEndian.AppendUint64(f, i)
		f = append(f, payload(i, i)...)
		seg = append(binary.BigEndian.AppendUint32(seg, crc32.Checksum(f, castagnoli)), f...)
	}
	seg = append(seg, make([]byte, wal.MinSegmentSize-len(seg))...)
	mustDo(t, os.WriteFile(filepath.Join(dir, "0000000000000001.wal"), seg, 0o640))
	o := wal.Options{Dir: dir, SegmentSize: wal.MinSegmentSize}
	l, got, info := replayAll(t, o, 0)
	if len(got) != 3 || info.Last != 3 || info.Torn+info.Corrupt != 0 {
		t.Fatalf("replayed %v, info %+v", got, info)
	}
	appendN(t, l, 4, 2, 1)
	mustDo(t, l.Sync())
	mustDo(t, l.Close())
	_, got, info = replayAll(t, o, 0)
	if len(got) != 5 || info.Last != 5 || info.Gaps != 0 {
		t.Fatalf("after writing on: replayed %v, info %+v", got, info)
	}
}

// TestOpensOnAFullDisk: a gateway restarted on a full disk opens its log
// all the same (replay needs no room); writes are refused, with nothing
// written, until a segment can be prepared.
func TestOpensOnAFullDisk(t *testing.T) {
	fs := storetest.NewCrashFS(rand.New(rand.NewPCG(4, 4)))
	o := wal.Options{Dir: "/wal", SegmentSize: wal.MinSegmentSize, FS: fs}
	l, _, _ := replayAll(t, o, 0)
	next := appendN(t, l, 1, 5, 1)
	mustDo(t, l.Sync())
	mustDo(t, l.Close())
	var full atomic.Bool
	full.Store(true)
	fs.SetFault(func(op, _ string) error {
		if op == "create" && full.Load() {
			return syscall.ENOSPC
		}
		return nil
	})
	l, got, _ := replayAll(t, o, 0)
	if len(got) != 5 {
		t.Fatalf("replayed %v", got)
	}
	mustDo(t, l.Append(next, next, payload(next, next)))
	if err := l.Flush(); !errors.Is(err, syscall.ENOSPC) || errors.Is(err, wal.ErrBroken) {
		t.Fatalf("Flush on a full disk: %v, want ENOSPC before any write", err)
	}
	full.Store(false)
	waitFor(t, func() bool { return l.Stats().Spare })
	mustDo(t, l.Flush())
	mustDo(t, l.Sync())
	mustDo(t, l.Close())
	if _, got, _ = replayAll(t, o, 0); len(got) != 6 {
		t.Fatalf("after room was made: replayed %v", got)
	}
}

// TestAPreparationAFlushFailedIsRetried: a Flush that must prepare the
// next segment itself and finds the disk full leaves the retry to the
// background preparer, so that a spare is ready once there is room. The
// preparer used to skip a retry that came while a Flush was preparing;
// when that preparation failed, no retry was left, and the log reported
// no spare until the next Flush (the cause of a CI failure of
// TestOpensOnAFullDisk). Here the preparer's one-second retry is made to
// come while the Flush's preparation is held.
func TestAPreparationAFlushFailedIsRetried(t *testing.T) {
	fs := storetest.NewCrashFS(rand.New(rand.NewPCG(5, 5)))
	o := wal.Options{Dir: "/wal", SegmentSize: wal.MinSegmentSize, MaxFree: 1, FS: fs}
	l, _, _ := replayAll(t, o, 0)
	waitFor(t, func() bool { return l.Stats().Spare })
	var full, hold atomic.Bool
	tried, release := make(chan struct{}, 1), make(chan struct{})
	fs.SetFault(func(op, _ string) error {
		if op != "create" || !full.Load() {
			return nil
		}
		select {
		case tried <- struct{}{}:
		default:
		}
		if hold.Load() {
			<-release
		}
		return syscall.ENOSPC
	})
	full.Store(true)
	// The first rotation takes the spare; the preparer, woken, fails to
	// make the next and will retry in a second.
	next := uint64(1)
	for segs := l.Stats().Segments; l.Stats().Segments == segs; next++ {
		mustDo(t, l.Append(next, next, payload(next, next)))
		mustDo(t, l.Flush())
	}
	<-tried
	// The next rotation prepares in the Flush, held past that retry.
	hold.Store(true)
	flushed := make(chan error, 1)
	go func() {
		var err error
		for ; err == nil; next++ {
			if err = l.Append(next, next, payload(next, next)); err == nil {
				err = l.Flush()
			}
		}
		flushed <- err
	}()
	<-tried
	time.Sleep(1500 * time.Millisecond) // the preparer's retry comes meanwhile
	close(release)
	if err := <-flushed; !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Flush on a full disk: %v, want ENOSPC", err)
	}
	full.Store(false)
	waitFor(t, func() bool { return l.Stats().Spare })
	mustDo(t, l.Flush())
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
	}
}
