package store

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A reading taken while the system clock was unsynchronised is stored with
// its (wrong) wall time, flagged ClockUnsynced, and — if it carries Mono, the
// time since boot when it was taken — with an entry in the clock-repair
// bucket: seq → Mono. When the clock syncs, RepairClock rewrites those
// readings' times as bootWall + Mono. Mono only means something within the
// boot that measured it, so the bucket belongs to one boot (kRepairBoot):
// entries left by an earlier boot are discarded at Open and their readings
// stay flagged unsynced for good.
//
// Readings still in the head carry Mono with them and are listed in
// head.pending; a checkpoint writes their entries into the bucket. Readings
// below kRepairFrom never wait for repair: it moves past the log's readings
// when the boot changes or the repair is abandoned, so that a replay of
// the log does not make them pending again.

var (
	bClockRepair   = []byte("clock_repair")
	kRepairBoot    = []byte("clock_repair_boot")
	kRepairFrom    = []byte("clock_repair_from")
	kClockRepaired = []byte("clock_repaired")
	kClockStranded = []byte("clock_stranded")
)

// repairChunk bounds the readings rewritten in one transaction.
const repairChunk = 4096

// ClockRepair says where the repair of unsynced reading times stands.
type ClockRepair struct {
	// Pending is how many readings of this boot wait for the clock to sync.
	Pending int
	// HoldFrom is the lowest pending seq (0 if none): uploads stop short of
	// it, so that a reading is repaired before the cloud sees it.
	HoldFrom uint64
	// Repaired counts readings whose time was repaired, over the store's life.
	Repaired uint64
	// Stranded counts readings left flagged unsynced because the gateway
	// rebooted (or gave up waiting) before the clock synced.
	Stranded uint64
}

// ClockRepair returns the state of the clock repair.
func (s *Store) ClockRepair() (ClockRepair, error) {
	var cr ClockRepair
	err := s.read(func(sn *snapshot) error {
		meta := sn.tx.Bucket(bMeta)
		cr = ClockRepair{
			Pending:  sn.tx.Bucket(bClockRepair).Stats().KeyN + len(sn.h.pending),
			HoldFrom: sn.holdFrom(),
			Repaired: getUint(meta, kClockRepaired),
			Stranded: getUint(meta, kClockStranded),
		}
		return nil
	})
	return cr, err
}

// holdFrom is the lowest seq waiting for clock repair, or 0.
func (sn *snapshot) holdFrom() uint64 {
	if k, _ := sn.tx.Bucket(bClockRepair).Cursor().First(); k != nil {
		return binary.BigEndian.Uint64(k)
	}
	if len(sn.h.pending) > 0 {
		return sn.h.pending[0]
	}
	return 0
}

// anyPending reports whether readings wait for clock repair, and whether
// some of them are still in the head.
func (s *Store) anyPending() (pending, inHead bool, err error) {
	err = s.read(func(sn *snapshot) error {
		inHead = len(sn.h.pending) > 0
		pending = inHead || sn.holdFrom() != 0
		return nil
	})
	return pending, inHead, err
}

// repairable reports whether r, stored now, waits for clock repair: it is
// unsynced, knows its time since boot, and the boot is known.
func (s *Store) repairable(r *Reading) bool {
	return r.Clock == ClockUnsynced && r.Mono > 0 && s.opts.BootID != "" && r.Seq >= s.repairFrom.Load()
}

// storedBoot is the boot the clock-repair entries belong to.
func (s *Store) storedBoot() string {
	var boot string
	_ = s.view(func(tx *bolt.Tx) error { // Open's read cannot fail once init succeeded
		boot = string(tx.Bucket(bMeta).Get(kRepairBoot))
		return nil
	})
	return boot
}

// adoptBoot makes the clock-repair state belong to boot: entries of another
// boot can never be repaired and are discarded, and the readings the log
// replayed from that boot are passed by kRepairFrom. An empty boot id
// (unknown) discards them too, and no new entry will be written.
func (s *Store) adoptBoot(boot string) error {
	if boot == "" && s.storedBoot() == "" && s.repairFrom.Load() > s.lastSeq.Load() {
		return nil // no boot known before or now: nothing can wait for repair
	}
	// Counted before the write transaction: no head lock is taken inside
	// one. Open runs this before anything else writes the head.
	from, n := s.lastSeq.Load()+1, s.head.waitingSince(s.repairFrom.Load())
	adopted := false
	err := s.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		if string(meta.Get(kRepairBoot)) == boot && boot != "" {
			return nil
		}
		inFile, err := clearBucket(tx, bClockRepair)
		if err != nil {
			return err
		}
		if n += inFile; n > 0 {
			s.log.Warn("store: readings from an earlier boot never got a synced clock; they stay flagged unsynced", "readings", n)
			if err := putUint(meta, kClockStranded, getUint(meta, kClockStranded)+uint64(n)); err != nil {
				return err
			}
		}
		if err := putUint(meta, kRepairFrom, from); err != nil {
			return err
		}
		adopted = true
		return meta.Put(kRepairBoot, []byte(boot))
	})
	if err == nil && adopted {
		s.passedRepairFrom(from)
	}
	return err
}

// pendingBelow returns the seq after every stored reading, and how many of
// the head's readings below it wait for clock repair: what passing
// kRepairFrom to that seq abandons in the head. It is read before the
// write transaction that passes it: no head lock is taken inside one.
func (s *Store) pendingBelow() (from uint64, n int) {
	from = s.lastSeq.Load() + 1 // every reading below it is in the head or the file
	s.head.mu.RLock()
	defer s.head.mu.RUnlock()
	for _, seq := range s.head.pending {
		if seq < from {
			n++
		}
	}
	return from, n
}

// passedRepairFrom applies a committed move of kRepairFrom to from: the
// head's readings below it no longer wait for repair.
func (s *Store) passedRepairFrom(from uint64) {
	s.repairFrom.Store(from)
	s.head.clearPendingBelow(from)
}

// clearBucket empties the bucket name and returns how many keys it held.
func clearBucket(tx *bolt.Tx, name []byte) (int, error) {
	n := tx.Bucket(name).Stats().KeyN
	if err := tx.DeleteBucket(name); err != nil {
		return 0, err
	}
	_, err := tx.CreateBucket(name)
	return n, err
}

// RepairClock gives every pending reading the time bootWall + Mono, where
// bootWall is the synchronised wall time at which this boot began (now minus
// the time since boot), marks it synced and returns how many it repaired.
// Readings already in a recorded batch keep their flag: the cloud may have
// seen them, and a batch is resent byte for byte.
//
// Calling it with nothing pending costs a read transaction, so a tracker may
// call it after every check to catch readings stamped before the sync and
// committed after it.
func (s *Store) RepairClock(bootWall time.Time) (int, error) {
	pending, inHead, err := s.anyPending()
	if err != nil || !pending {
		return 0, err
	}
	if inHead { // repairs are rewrites in bbolt: move the head there first
		if err := s.checkpoint(); err != nil {
			return 0, err
		}
	}
	total := 0
	for {
		n, more, err := s.repairChunk(bootWall)
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

func (s *Store) repairChunk(bootWall time.Time) (repaired int, more bool, err error) {
	err = s.update(func(tx *bolt.Tx) error {
		repaired, more = 0, false
		pending, readings, index := tx.Bucket(bClockRepair), tx.Bucket(bReadings), tx.Bucket(bIndex)
		sent, err := protectedSpans(tx)
		if err != nil {
			return err
		}
		var done [][]byte
		c := pending.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(done) == repairChunk {
				more = true
				break
			}
			done = append(done, append([]byte(nil), k...))
			seq := binary.BigEndian.Uint64(k)
			rv := readings.Get(k)
			if rv == nil || len(v) != 8 || inSpans(sent, seq) || seq <= getUint(tx.Bucket(bMeta), kAcked) {
				continue // deleted, corrupt entry, or already on its way
			}
			var r Reading
			sid, err := decodeReading(rv, &r)
			if err != nil {
				return fmt.Errorf("store: reading %d: %w", seq, err)
			}
			if err := index.Delete(indexKey(sid, r.Time, seq)); err != nil {
				return err
			}
			r.Time = bootWall.Add(time.Duration(binary.BigEndian.Uint64(v))).UTC()
			r.Clock = ClockSynced
			if err := readings.Put(k, encodeReading(nil, sid, &r)); err != nil {
				return err
			}
			if err := index.Put(indexKey(sid, r.Time, seq), indexValue(&r)); err != nil {
				return err
			}
			repaired++
		}
		for _, k := range done {
			if err := pending.Delete(k); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bMeta)
		stranded := uint64(len(done) - repaired)
		if err := putUint(meta, kClockStranded, getUint(meta, kClockStranded)+stranded); err != nil {
			return err
		}
		return putUint(meta, kClockRepaired, getUint(meta, kClockRepaired)+uint64(repaired))
	})
	if err != nil {
		return 0, false, fmt.Errorf("store: repair reading times: %w", err)
	}
	return repaired, more, nil
}

// AbandonClockRepair gives up on the pending readings: they stay flagged
// unsynced with the times they were stored with, and uploads stop holding
// them back. It returns how many it abandoned; with none pending it costs a
// read transaction.
func (s *Store) AbandonClockRepair() (int, error) {
	if pending, _, err := s.anyPending(); err != nil || !pending {
		return 0, err
	}
	from, n := s.pendingBelow()
	err := s.update(func(tx *bolt.Tx) error {
		inFile, err := clearBucket(tx, bClockRepair)
		if err != nil {
			return err
		}
		n += inFile
		meta := tx.Bucket(bMeta)
		if err := putUint(meta, kClockStranded, getUint(meta, kClockStranded)+uint64(n)); err != nil {
			return err
		}
		return putUint(meta, kRepairFrom, from)
	})
	if err != nil {
		return 0, fmt.Errorf("store: abandon clock repair: %w", err)
	}
	s.passedRepairFrom(from)
	return n, nil
}

// inSpans reports whether seq lies in one of the sorted, disjoint spans.
func inSpans(spans []span, seq uint64) bool {
	for _, sp := range spans {
		if sp.first <= seq && seq <= sp.last {
			return true
		}
	}
	return false
}
