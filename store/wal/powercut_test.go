package wal_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"fieldgate/store/storetest"
	"fieldgate/store/wal"
)

// stamp places an append or a sync in one run: the process (round) that
// did it and a clock that every append and sync advances.
type stamp struct{ proc, clock int }

// faultLog is the account TestFaults keeps of what it did to the log,
// records named by their first seq.
type faultLog struct {
	content  map[uint64][]byte // payload as last appended
	appended map[uint64]stamp  // when it was appended
	synced   map[uint64]stamp  // when a successful sync covered it (proc -1: a replay)
	seen     map[uint64]bool   // returned by a replay
	flipped  bool              // a bit was flipped on the device
	clock    int
}

// TestFaults puts the log through thousands of crash states of the kinds
// a Raspberry Pi meets, chosen at random per round: power cuts that keep
// any subset of the unsynced pages and tear some; a process that dies and
// restarts before the power goes; an fdatasync or a write that fails with
// EIO (the kernel dropping the pages), then Recover or not; a bit flipped
// on the device. After every round, replay must show:
//
//   - every record a sync covered, unless a flipped bit destroyed it, and
//     then the loss is reported where it is — as corrupt, not torn, when a
//     frame that survived was written after that sync by the same process;
//   - every record replay ever returned, on the same terms (replay trusts
//     only the device);
//   - only records as they were appended last, each under its own seqs (no
//     stale frame, no seq handed out twice);
//   - no corruption without a flipped bit.
func TestFaults(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 3))
	fs := storetest.NewCrashFS(rand.New(rand.NewPCG(seed, 4)))
	o := wal.Options{Dir: "/wal", SegmentSize: wal.MinSegmentSize, FS: fs}
	rounds := 3000
	if testing.Short() {
		rounds = 300
	}
	fl := &faultLog{content: map[uint64][]byte{}, appended: map[uint64]stamp{}, synced: map[uint64]stamp{}, seen: map[uint64]bool{}}
	var ckpt uint64
	for round := range rounds {
		o.FS = fs.Process() // the last process's leftovers can change nothing
		l := mustOpen(t, o)
		got := map[uint64]bool{}
		info, err := l.Replay(ckpt, func(first, last uint64, p []byte) error {
			if want := fl.content[first]; !bytes.Equal(p, want) {
				return fmt.Errorf("record %d-%d holds %q, was last appended as %q", first, last, p, want)
			}
			got[first] = true
			return nil
		})
		if err != nil {
			t.Fatalf("round %d (seed %d): replay: %v", round, seed, err)
		}
		fl.check(t, round, seed, ckpt, got, info)

		next := info.Last + 1 // as the store does: nothing above it can come back
		for s := range fl.content {
			if s >= next {
				fl.forget(s) // lost before any sync: its seqs are free again
			}
		}
		var mine []uint64
		add := func(first, last uint64, p []byte) {
			mustDo(t, l.Append(first, last, p))
			fl.clock++
			fl.content[first], fl.appended[first] = p, stamp{round, fl.clock}
			mine = append(mine, first)
		}
		synced := func() {
			fl.clock++
			for _, s := range mine {
				if _, ok := fl.synced[s]; !ok {
					fl.synced[s] = stamp{round, fl.clock}
				}
			}
		}
		sync := func() {
			mustDo(t, l.Flush())
			mustDo(t, l.Sync())
			synced()
		}
		for range rng.IntN(30) {
			k := uint64(1 + rng.IntN(4))
			add(next, next+k-1, fmt.Appendf(nil, "records %d-%d #%d %s", next, next+k-1, fl.clock, bytes.Repeat([]byte{'x'}, rng.IntN(300))))
			next += k
			if rng.IntN(3) == 0 {
				mustDo(t, l.Flush())
			}
			if rng.IntN(5) == 0 {
				sync()
			}
		}
		switch rng.IntN(10) {
		case 0: // an undervoltage fails one write or sync; Recover, or not
			faultOnce(fs, []string{"sync", "write"}[rng.IntN(2)], syscall.EIO)
			add(next, next, fmt.Appendf(nil, "records %d-%d doomed", next, next))
			if err := l.Flush(); err == nil && l.Sync() == nil {
				synced() // the fault hit the preparer's file instead
			}
			fs.SetFault(nil)
			if rng.IntN(2) == 0 {
				mustDo(t, l.Recover())
				mine = mine[:0] // voided, or synced before
				add(next+1, next+1, fmt.Appendf(nil, "records %d-%d #%d", next+1, next+1, fl.clock))
				sync()
			}
		case 1: // a wearing card flips a bit somewhere
			if names, _ := o.FS.List("/wal"); len(names) > 0 {
				name := filepath.Join("/wal", names[rng.IntN(len(names))])
				fl.flipped = fs.FlipBit(name, int64(rng.IntN(int(wal.MinSegmentSize))), uint(rng.IntN(8))) || fl.flipped
			}
		}
		if rng.IntN(3) == 0 { // a checkpoint of most of what is synced
			var top uint64
			for s := range fl.synced {
				top = max(top, s)
			}
			if top > ckpt {
				ckpt = top - uint64(rng.IntN(int(top-ckpt)))
				_ = l.Release(ckpt) // a quarantine may fail on a flipped name: not the point here
			}
		}
		if rng.IntN(4) == 0 {
			fs.Crash() // the process dies; the next round's replay must sync what it reads
		} else {
			fs.PowerCut()
		}
		_ = l.Close() // its handles are dead; Close stops the preparer
	}
	t.Logf("%d rounds; log ends at %d", rounds, ckpt)
}

func (fl *faultLog) forget(s uint64) {
	delete(fl.content, s)
	delete(fl.appended, s)
	delete(fl.synced, s)
	delete(fl.seen, s)
}

// proven reports whether a record of got was written after the sync that
// covered s, by the process that synced it: its frame records s as durable.
func (fl *faultLog) proven(s uint64, got map[uint64]bool) bool {
	at, ok := fl.synced[s]
	if !ok || at.proc < 0 {
		return false
	}
	for r := range got {
		if a := fl.appended[r]; a.proc == at.proc && a.clock > at.clock {
			return true
		}
	}
	return false
}

// check compares one replay with the account.
func (fl *faultLog) check(t *testing.T, round int, seed, ckpt uint64, got map[uint64]bool, info wal.ReplayInfo) {
	t.Helper()
	covered := func(s uint64, proven bool) bool {
		for _, d := range info.Damage {
			if (d.First == 0 || (d.First <= s && s <= d.Last)) && (!proven || d.Kind != wal.DamageTorn) {
				return true
			}
		}
		return false
	}
	for s := range fl.content {
		_, synced := fl.synced[s]
		if got[s] || s <= ckpt || (!synced && !fl.seen[s]) {
			continue
		}
		proven := fl.proven(s, got)
		if !fl.flipped || !covered(s, proven) {
			t.Fatalf("round %d (seed %d): record %d (synced %v, seen %v, proven %v) is missing; damage %+v",
				round, seed, s, synced, fl.seen[s], proven, info.Damage)
		}
		fl.forget(s) // lost to a flipped bit, and reported
	}
	for s := range got {
		fl.seen[s] = true
		if _, ok := fl.synced[s]; !ok {
			fl.synced[s] = stamp{-1, fl.clock} // replay synced it: it is on the device now
		}
	}
	if info.Corrupt > 0 && !fl.flipped {
		t.Fatalf("round %d (seed %d): corruption reported without a flipped bit: %+v", round, seed, info.Damage)
	}
}

// testSeed is a random seed, or FIELDGATE_TEST_SEED to replay a logged one.
func testSeed(t *testing.T) uint64 {
	seed := rand.Uint64()
	if v := os.Getenv("FIELDGATE_TEST_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("FIELDGATE_TEST_SEED: %v", err)
		}
	}
	t.Logf("seed %d (FIELDGATE_TEST_SEED replays it)", seed)
	return seed
}
