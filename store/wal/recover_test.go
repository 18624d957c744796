package wal_test

import (
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"fieldgate/store/storetest"
	"fieldgate/store/wal"
)

// faultOnce makes the next operation op on one of the log's segment files
// (not a spare being prepared in the background) fail with err.
func faultOnce(fs *storetest.CrashFS, op string, err error) {
	fs.SetFault(func(o, name string) error {
		if base := filepath.Base(name); o == op && len(base) == len("0000000000000001.wal") && strings.HasSuffix(base, ".wal") {
			fs.SetFault(nil)
			return err
		}
		return nil
	})
}

// TestFailedSyncBreaksTheLogUntilRecover: after a failed fdatasync the
// pages may be gone from the device while the cache still shows them.
// Nothing is written until Recover, which voids the failed records on the
// device and goes on in a fresh segment; a power cut afterwards keeps every
// record synced before and after, and never the voided one.
func TestFailedSyncBreaksTheLogUntilRecover(t *testing.T) {
	for _, op := range []string{"sync", "write"} {
		t.Run(op, func(t *testing.T) {
			fs := storetest.NewCrashFS(rand.New(rand.NewPCG(1, 1)))
			o := wal.Options{Dir: "/wal", SegmentSize: wal.MinSegmentSize, FS: fs}
			l, _, _ := replayAll(t, o, 0)
			next := appendN(t, l, 1, 5, 1)
			mustDo(t, l.Sync())
			faultOnce(fs, op, syscall.EIO)
			mustDo(t, l.Append(next, next+1, payload(next, next+1)))
			err := l.Flush()
			if err == nil {
				err = l.Sync()
			}
			if !errors.Is(err, syscall.EIO) || !errors.Is(err, wal.ErrBroken) {
				t.Fatalf("the failed %s: %v, want EIO and ErrBroken", op, err)
			}
			mustDo(t, l.Append(next+2, next+2, payload(next+2, next+2)))
			voided := next + 2 // every seq appended is voided, flushed or not
			if err := l.Flush(); !errors.Is(err, wal.ErrBroken) {
				t.Errorf("Flush of a broken log: %v", err)
			}
			if st := l.Stats(); !errors.Is(st.Broken, wal.ErrBroken) {
				t.Errorf("Stats.Broken %v", st.Broken)
			}
			// The device still fails: Recover says so and the log stays broken.
			faultOnce(fs, "sync", syscall.EIO)
			if err := l.Recover(); err == nil {
				t.Fatal("Recover succeeded on a failing device")
			}
			mustDo(t, l.Recover())
			if st := l.Stats(); st.Broken != nil || st.Recoveries != 1 {
				t.Errorf("after Recover: stats %+v", st)
			}
			after := appendN(t, l, voided+1, 5, 1)
			mustDo(t, l.Sync())
			fs.PowerCut()
			_ = l.Close() // its handles are dead
			_, got, info := replayAll(t, o, 0)
			want := []record{{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}}
			for s := voided + 1; s < after; s++ {
				want = append(want, record{s, s})
			}
			if !slices.Equal(got, want) || info.Last != after-1 || info.Gaps+info.Corrupt != 0 {
				t.Fatalf("after the power cut: replayed %v, info %+v; want %v", got, info, want)
			}
		})
	}
}

// TestRecoverFindsLostSyncedRecords: if what a successful sync covered no
// longer reads back, Recover cannot repair the log in place.
func TestRecoverFindsLostSyncedRecords(t *testing.T) {
	fs := storetest.NewCrashFS(rand.New(rand.NewPCG(3, 3)))
	o := wal.Options{Dir: "/wal", SegmentSize: wal.MinSegmentSize, FS: fs}
	l, _, _ := replayAll(t, o, 0)
	appendN(t, l, 1, 5, 1)
	mustDo(t, l.Sync())
	if !fs.FlipBit(filepath.Join("/wal", "0000000000000001.wal"), 100, 3) {
		t.Fatal("no byte to flip")
	}
	faultOnce(fs, "sync", syscall.EIO)
	mustDo(t, l.Append(6, 6, payload(6, 6)))
	mustDo(t, l.Flush())
	if err := l.Sync(); err == nil {
		t.Fatal("the faulty sync succeeded")
	}
	if err := l.Recover(); !errors.Is(err, wal.ErrLost) {
		t.Fatalf("Recover: %v, want ErrLost", err)
	}
}

// TestReplayTrustsOnlyTheDevice: a process that died left written pages
// in the page cache; replay syncs them before it returns them, so a power
// cut later cannot take back a record replay handed out. And after a
// failed writeback, whose pages the cache still shows, replay reads the
// device, not the cache.
func TestReplayTrustsOnlyTheDevice(t *testing.T) {
	for seed := range uint64(100) {
		fs := storetest.NewCrashFS(rand.New(rand.NewPCG(seed, 5)))
		o := wal.Options{Dir: "/wal", SegmentSize: wal.MinSegmentSize, FS: fs}
		l, _, _ := replayAll(t, o, 0)
		next := appendN(t, l, 1, 3, 2)
		mustDo(t, l.Sync())
		if seed%2 == 1 {
			faultOnce(fs, "sync", syscall.EIO)
			appendN(t, l, next, 3, 2)
			if err := l.Sync(); err == nil {
				t.Fatalf("seed %d: the faulty sync succeeded", seed)
			}
		} else {
			appendN(t, l, next, 3, 2) // written, never synced
		}
		fs.Crash()
		_ = l.Close() // its handles are dead
		l, got, _ := replayAll(t, o, 0)
		fs.PowerCut()
		_ = l.Close()
		_, after, _ := replayAll(t, o, 0)
		if !slices.Equal(got, after) {
			t.Fatalf("seed %d: replay after the crash returned %v, after a later power cut %v", seed, got, after)
		}
		if seed%2 == 0 && len(got) != 6 {
			t.Fatalf("seed %d: replay after the crash returned %v: the dead process's records were in the cache", seed, got)
		}
	}
}
