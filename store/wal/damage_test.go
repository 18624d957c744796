package wal_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fieldgate/store/wal"
)

// frameOffsets returns where each frame of a segment's bytes begins.
func frameOffsets(b []byte) []int {
	var offs []int
	for off := 40; off+32 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[off+4:]))
		if binary.BigEndian.Uint64(b[off+8:]) == 0 || off+32+n > len(b) {
			break
		}
		offs = append(offs, off)
		off += 32 + n
	}
	return offs
}

// writeSynced appends records next..next+n-1, one per frame, syncing
// after each so that every later frame records the earlier ones as
// durable, and closes the log.
func writeSynced(t *testing.T, o wal.Options, n int) {
	t.Helper()
	l, _, _ := replayAll(t, o, 0)
	for i := uint64(1); i <= uint64(n); i++ {
		mustDo(t, l.Append(i, i, payload(i, i)))
		mustDo(t, l.Flush())
		mustDo(t, l.Sync())
	}
	mustDo(t, l.Close())
}

func seqsOf(rs []record) map[uint64]bool {
	m := map[uint64]bool{}
	for _, r := range rs {
		for s := r.first; s <= r.last; s++ {
			m[s] = true
		}
	}
	return m
}

// TestStaleFramesOfOneWriteAreNeverSpliced is the card that persisted the
// later pages of an unsynced write but not its first. Replay used to find
// a zero first frame slot, reuse the segment in place from offset 32, and
// after a second power cut splice the write's leftover frames onto the new
// ones as if they continued them. Now the frames past the lost page are
// read back under their own seqs, the segment is never written again, and
// the next seqs start above them.
func TestStaleFramesOfOneWriteAreNeverSpliced(t *testing.T) {
	dir := t.TempDir()
	o := wal.Options{Dir: dir, SegmentSize: wal.MinSegmentSize}
	l, _, _ := replayAll(t, o, 0)
	for i := uint64(1); i <= 200; i++ { // equal-sized records, one flush
		mustDo(t, l.Append(i, i, []byte(fmt.Sprintf("records %d-%d %0100d", i, i, 0))))
	}
	mustDo(t, l.Flush())
	mustDo(t, l.Sync())
	mustDo(t, l.Close())
	seg := filepath.Join(dir, "0000000000000001.wal")
	b, err := os.ReadFile(seg)
	mustDo(t, err)
	clear(b[40:4096]) // the write's first page never reached the card
	mustDo(t, os.WriteFile(seg, b, 0o640))

	l = mustOpen(t, o)
	var got []record
	info, err := l.Replay(0, func(first, last uint64, p []byte) error {
		if !strings.HasPrefix(string(p), fmt.Sprintf("records %d-%d ", first, last)) {
			return fmt.Errorf("record %d-%d holds %q", first, last, p)
		}
		got = append(got, record{first, last})
		return nil
	})
	mustDo(t, err)
	if len(got) == 0 || got[len(got)-1].last != 200 || info.Last != 200 || got[0].first < 2 {
		t.Fatalf("replayed %d records (%v …), info %+v: want the frames past the lost page under their own seqs", len(got), got[:min(1, len(got))], info)
	}
	if info.Torn != 1 || info.Corrupt != 0 || info.Salvaged != len(got) {
		t.Errorf("info %+v: want one torn region (nothing synced recorded it) and every frame after it salvaged", info)
	}
	// The next records go to a new segment: the first is never written again.
	next := appendN(t, l, info.Last+1, 40, 1)
	mustDo(t, l.Sync())
	mustDo(t, l.Close())
	b2, err := os.ReadFile(seg)
	mustDo(t, err)
	if string(b2) != string(b) {
		t.Error("the damaged segment was written in place")
	}
	_, again, info := replayAll(t, o, 200)
	if len(again) != 40 || again[0].first != 201 || info.Last != next-1 {
		t.Fatalf("second replay: %d records from %v, info %+v", len(again), again[:min(1, len(again))], info)
	}
}

// TestMidLogCorruptionIsSalvagedCountedAndQuarantined: a bit flipped in a
// record that a later frame records as synced is corruption, not a torn
// tail. The rest of the segment is read back, the lost seqs are named, and
// once released the file is set aside instead of recycled.
func TestMidLogCorruptionIsSalvagedCountedAndQuarantined(t *testing.T) {
	dir := t.TempDir()
	o := wal.Options{Dir: dir, SegmentSize: wal.MinSegmentSize, MaxFree: 4}
	writeSynced(t, o, 100)
	seg := filepath.Join(dir, "0000000000000001.wal")
	b, err := os.ReadFile(seg)
	mustDo(t, err)
	off := frameOffsets(b)[19] // record 20
	b[off+40] ^= 0x10
	mustDo(t, os.WriteFile(seg, b, 0o640))

	l, got, info := replayAll(t, o, 0)
	seqs := seqsOf(got)
	if len(seqs) != 99 || seqs[20] || !seqs[21] || !seqs[100] {
		t.Fatalf("replayed %d records (20: %v): want all but record 20", len(seqs), seqs[20])
	}
	if info.Corrupt != 1 || info.Torn != 0 || info.Salvaged != 80 || len(info.Damage) != 1 {
		t.Fatalf("info %+v: want one corrupt place and 80 records salvaged past it", info)
	}
	if d := info.Damage[0]; d.Kind != wal.DamageCorrupt || d.First != 20 || d.Last != 20 || d.File != seg || d.Offset != int64(off) {
		t.Errorf("damage %+v: want corrupt, seq 20, %s at %d", d, seg, off)
	}
	// The log moves on; once the records are checkpointed the file is
	// quarantined.
	appendN(t, l, 101, 600, 1)
	mustDo(t, l.Sync())
	mustDo(t, l.Release(300))
	st := l.Stats()
	quarantined := filepath.Join(dir, "quarantine-0000000000000001.wal")
	if len(st.Quarantined) != 1 || st.Quarantined[0] != quarantined {
		t.Fatalf("quarantined %v, want %s", st.Quarantined, quarantined)
	}
	if q, err := os.ReadFile(quarantined); err != nil || string(q) != string(b) {
		t.Errorf("the quarantined file is not the damaged segment as found: %v", err)
	}
	mustDo(t, l.Close())
	l, _, info = replayAll(t, o, 300)
	if st := l.Stats(); len(st.Quarantined) != 1 || info.Corrupt != 0 {
		t.Errorf("after a reopen: quarantined %v, info %+v", st.Quarantined, info)
	}
}

// TestTornRegionBeforeSalvagedFrames: damage in a write that no later
// frame records as synced is a tear (a power cut caught it), not
// corruption; the frames after it are read back all the same.
func TestTornRegionBeforeSalvagedFrames(t *testing.T) {
	dir := t.TempDir()
	o := wal.Options{Dir: dir, SegmentSize: wal.MinSegmentSize}
	l, _, _ := replayAll(t, o, 0)
	appendN(t, l, 1, 50, 1) // one unsynced stretch
	mustDo(t, l.Sync())
	mustDo(t, l.Close())
	seg := filepath.Join(dir, "0000000000000001.wal")
	b, err := os.ReadFile(seg)
	mustDo(t, err)
	b[frameOffsets(b)[9]+40] ^= 1
	mustDo(t, os.WriteFile(seg, b, 0o640))
	_, got, info := replayAll(t, o, 0)
	if seqs := seqsOf(got); len(seqs) != 49 || seqs[10] {
		t.Fatalf("replayed %d records: want 49, all but 10", len(seqs))
	}
	if info.Torn != 1 || info.Corrupt != 0 || info.Damage[0].Kind != wal.DamageTorn {
		t.Errorf("info %+v: want one torn region", info)
	}
}

// TestCorruptHeader: a segment whose header no longer checks out is never
// recycled. Its frames are read back if the salt in the header's bytes
// survived; if not, the file is quarantined at once.
func TestCorruptHeader(t *testing.T) {
	for _, c := range []struct {
		name     string
		at       int
		salvaged int
	}{
		{"magic", 0, 3},
		{"epoch", 20, 0},
		{"base", 28, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			o := wal.Options{Dir: dir, SegmentSize: wal.MinSegmentSize}
			writeSynced(t, o, 3)
			seg := filepath.Join(dir, "0000000000000001.wal")
			b, err := os.ReadFile(seg)
			mustDo(t, err)
			b[c.at] ^= 0xff
			mustDo(t, os.WriteFile(seg, b, 0o640))
			l, got, info := replayAll(t, o, 0)
			if len(got) != c.salvaged || info.Corrupt != 1 || info.Damage[0].Kind != wal.DamageHeader {
				t.Fatalf("replayed %v, info %+v: want %d records and a header reported", got, info, c.salvaged)
			}
			if c.salvaged == 0 {
				if st := l.Stats(); len(st.Quarantined) != 1 {
					t.Errorf("quarantined %v: want the file set aside at once", st.Quarantined)
				}
			}
			mustDo(t, l.Close())
		})
	}
}

// TestUndecodableRecordIsSkipped: a record that checks out but whose
// content the caller cannot decode is reported and skipped; replay goes on.
func TestUndecodableRecordIsSkipped(t *testing.T) {
	dir := t.TempDir()
	o := wal.Options{Dir: dir, SegmentSize: wal.MinSegmentSize}
	writeSynced(t, o, 10)
	// Any error but ErrBadRecord from the callback stops the replay.
	l := mustOpen(t, o)
	boom := errors.New("boom")
	if _, err := l.Replay(0, func(uint64, uint64, []byte) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Replay: %v, want the callback's error", err)
	}
	_ = l.Close() // it never replayed: nothing to check
	l = mustOpen(t, o)
	defer l.Close()
	n := 0
	info, err := l.Replay(0, func(first, _ uint64, _ []byte) error {
		if first == 4 {
			return fmt.Errorf("decoding: %w", wal.ErrBadRecord)
		}
		n++
		return nil
	})
	mustDo(t, err)
	if n != 9 || info.Corrupt != 1 || info.Last != 10 || info.Damage[0].Kind != wal.DamageRecord || info.Damage[0].First != 4 {
		t.Fatalf("%d records, info %+v", n, info)
	}
}

// TestATornFrameHeadHidesNothing is a write torn inside its frame head,
// which left garbage seqs there (no checksum covers a head on its own). A
// replay that found its segment first in the log (a checkpoint released
// the ones before it, and the power cut undid its own removal) once took
// that garbage for a claim on seqs up to 37715, skipped every record the
// next process had written and synced below it (seqs it gave again, the
// torn write having never been acknowledged), and lost them. Now a head
// counts only where it continues the sequence, a claim never hides a
// valid frame, and later frames void it.
func TestATornFrameHeadHidesNothing(t *testing.T) {
	dir := t.TempDir()
	o := wal.Options{Dir: dir, SegmentSize: wal.MinSegmentSize}
	writeSynced(t, o, 10) // segment 1

	l, _, _ := replayAll(t, o, 0) // a write the power cut tore, in segment 3
	appendN(t, l, 11, 1, 1)
	mustDo(t, l.Close())
	seg := filepath.Join(dir, "0000000000000003.wal")
	b, err := os.ReadFile(seg)
	mustDo(t, err)
	if offs := frameOffsets(b); len(offs) != 1 || binary.BigEndian.Uint64(b[48:]) != 11 {
		t.Fatalf("segment 3 holds frames at %v: want record 11 at 40", offs)
	}
	binary.BigEndian.PutUint64(b[48:], 28657) // the tear's garbage: first
	binary.BigEndian.PutUint64(b[56:], 37715) // and last
	mustDo(t, os.WriteFile(seg, b, 0o640))

	l, got, info := replayAll(t, o, 0) // the next process gives 11 again
	if len(got) != 10 || info.Last != 10 || info.Torn != 0 {
		t.Fatalf("replayed %v, info %+v: want 1-10 and the garbage left alone", got, info)
	}
	appendN(t, l, 11, 10, 1)
	mustDo(t, l.Sync())
	mustDo(t, l.Close())

	// A checkpoint at 10 releases segments 1 to 3; the power goes before
	// the removal of segment 3 is durable.
	l, _, _ = replayAll(t, o, 10)
	mustDo(t, l.Close())
	if _, err := os.Stat(seg); !os.IsNotExist(err) {
		t.Fatalf("segment 3 was not released: %v", err)
	}
	mustDo(t, os.WriteFile(seg, b, 0o640))
	_, got, info = replayAll(t, o, 10)
	if seqs := seqsOf(got); len(seqs) != 10 || !seqs[11] || !seqs[20] || info.Last != 20 {
		t.Fatalf("replayed %v, info %+v: want 11-20, the log ending at 20", got, info)
	}
}

// TestARottedLastFrameKeepsItsSeqs: the last frame a process wrote was
// synced (and perhaps uploaded) and then rotted. Its head still names its
// seqs, and nothing later gives them again: the log ends at them, so the
// next records never reuse them.
func TestARottedLastFrameKeepsItsSeqs(t *testing.T) {
	dir := t.TempDir()
	o := wal.Options{Dir: dir, SegmentSize: wal.MinSegmentSize}
	writeSynced(t, o, 10)
	seg := filepath.Join(dir, "0000000000000001.wal")
	b, err := os.ReadFile(seg)
	mustDo(t, err)
	b[frameOffsets(b)[9]+40] ^= 0x04 // record 10's payload
	mustDo(t, os.WriteFile(seg, b, 0o640))
	_, got, info := replayAll(t, o, 0)
	if seqs := seqsOf(got); len(seqs) != 9 || seqs[10] || info.Last != 10 {
		t.Fatalf("replayed %v, info %+v: want 1-9, the log ending at 10", got, info)
	}
}

// segmentHolding returns the path and bytes of the segment in dir whose
// first frame holds seq first.
func segmentHolding(t *testing.T, dir string, first uint64) (string, []byte) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "0*.wal"))
	mustDo(t, err)
	for _, name := range names {
		b, err := os.ReadFile(name)
		mustDo(t, err)
		if binary.BigEndian.Uint64(b[48:]) == first {
			return name, b
		}
	}
	t.Fatalf("no segment in %s begins with record %d", dir, first)
	return "", nil
}

// TestRotAfterAClaimedTearIsCorrupt: a power cut tore a process's last
// write (11-12); the next replay claimed its seqs, so the next process
// began above them (base 12) and wrote 13, synced it, and wrote more. A
// bit then rotted in 13. TestFaults (seed 16978240019182537247) found the
// loss reported as "torn" — never acknowledged — from 11 on: replay
// expected the segment to continue at 11 and took its frames' durable
// seqs as speaking only of seqs above their writer's base, so no frame
// proved 13 synced. A segment's base now says where its frames begin.
func TestRotAfterAClaimedTearIsCorrupt(t *testing.T) {
	dir := t.TempDir()
	o := wal.Options{Dir: dir, SegmentSize: wal.MinSegmentSize}
	writeSynced(t, o, 10)

	l, _, _ := replayAll(t, o, 0)
	appendN(t, l, 11, 1, 2) // 11-12, never synced
	mustDo(t, l.Close())
	seg, b := segmentHolding(t, dir, 11)
	b[40+40] ^= 0x01 // the power cut tore it
	mustDo(t, os.WriteFile(seg, b, 0o640))

	l, got, info := replayAll(t, o, 0)
	if len(got) != 10 || info.Last != 12 || info.Torn != 1 || info.Corrupt != 0 {
		t.Fatalf("replayed %v, info %+v: want 1-10, a torn write claiming up to 12", got, info)
	}
	appendN(t, l, 13, 1, 1)
	mustDo(t, l.Sync())
	appendN(t, l, 14, 5, 1) // each records 13 as durable
	mustDo(t, l.Sync())
	mustDo(t, l.Close())
	seg, b = segmentHolding(t, dir, 13)
	b[40+40] ^= 0x08 // the card rots record 13
	mustDo(t, os.WriteFile(seg, b, 0o640))

	_, got, info = replayAll(t, o, 0)
	if seqs := seqsOf(got); len(seqs) != 15 || seqs[13] || !seqs[18] || info.Last != 18 {
		t.Fatalf("replayed %v, info %+v: want 1-10 and 14-18", got, info)
	}
	want := []wal.Damage{
		{Kind: wal.DamageTorn, First: 11, Last: 12},
		{Kind: wal.DamageCorrupt, First: 13, Last: 13},
	}
	if len(info.Damage) != len(want) {
		t.Fatalf("damage %+v: want %+v", info.Damage, want)
	}
	for i, d := range info.Damage {
		if d.Kind != want[i].Kind || d.First != want[i].First || d.Last != want[i].Last {
			t.Errorf("damage %d is %+v: want %s %d-%d", i, d, want[i].Kind, want[i].First, want[i].Last)
		}
	}
}
