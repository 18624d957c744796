package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"fieldgate/store/wal"
)

// Meta keys of what replays found wrong in the log.
var (
	kTornTails    = []byte("wal_torn_tails")    // torn places, counted once each
	kLogCorrupt   = []byte("wal_corrupt")       // corrupt places, counted once each
	kLostReadings = []byte("wal_lost_readings") // readings lost in corrupt places, where known
	kLogDamage    = []byte("wal_damage")        // JSON: the places, newest last
)

// maxDamageKept bounds the places the store keeps listed.
const maxDamageKept = 32

// LogDamage is one place where a replay found the write-ahead log not as it
// was written (see wal.Damage).
type LogDamage struct {
	// Kind is "torn" (a write a power cut caught before its sync: never
	// acknowledged, nothing lost), "corrupt" (synced records damaged on the
	// card), "header" (an unreadable segment header) or "record" (a record
	// that checks out but does not decode).
	Kind   string    `json:"kind"`
	File   string    `json:"file"`
	Offset int64     `json:"offset"`
	First  uint64    `json:"first,omitempty"` // the seqs lost there, where known
	Last   uint64    `json:"last,omitempty"`
	Found  time.Time `json:"found"`
}

// Lost reports whether the place may have cost acknowledged readings.
func (d LogDamage) Lost() bool { return d.Kind != wal.DamageTorn }

func (d LogDamage) key() string {
	return d.Kind + ":" + d.File + ":" + strconv.FormatInt(d.Offset, 10)
}

// logDamage is what the store knows of the log's damage.
type logDamage struct {
	torn, corrupt, lost uint64
	places              []LogDamage
}

// replay reads the log written since the last checkpoint into the head,
// then sets the first seq to hand out (see seqFloor).
func (s *Store) replay() error {
	began := time.Now()
	ckpt := s.lastSeq.Load()
	sameBoot := s.opts.BootID != "" && s.storedBoot() == s.opts.BootID
	repairable := func(r *Reading) bool { return sameBoot && s.repairable(r) }
	var rs []Reading
	info, err := s.wal.Replay(ckpt, func(first, last uint64, payload []byte) error {
		rs = rs[:0]
		err := decodeLogRecord(payload, first, int(last-first+1), s.head.intern, func(r Reading) error {
			if r.Seq > s.lastSeq.Load() {
				rs = append(rs, r)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("%w: %w", wal.ErrBadRecord, err)
		}
		if len(rs) > 0 {
			s.head.insertLocked(rs, s.opts.Now(), repairable)
			s.lastSeq.Store(rs[len(rs)-1].Seq)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: replay the log: %w", err)
	}
	n := s.head.rs.len()
	s.count.Add(int64(n))
	if n > 0 || info.Torn > 0 || info.Gaps > 0 || info.Corrupt > 0 {
		s.log.Info("store: replayed the log", "readings", n, "records", info.Records, "salvaged", info.Salvaged, "bytes", info.Bytes,
			"torn", info.Torn, "corrupt", info.Corrupt, "gaps", info.Gaps, "took", time.Since(began).Round(time.Millisecond))
	}
	fresh := false
	if err := s.view(func(tx *bolt.Tx) error {
		s.setFloor(tx, info.Last)
		fresh = s.loadDamage(tx, info.Damage)
		return nil
	}); err != nil {
		return err
	}
	if !fresh {
		return nil
	}
	return s.update(s.saveDamage)
}

// setFloor makes the committer hand out seqs above every seq the gateway
// may ever have shown anyone: the log's end, and what the outbox recorded —
// the cloud's cursor, every batch's bounds, every dead letter's. A seq the
// cloud has seen is never given to another reading, even if the log lost
// it (a bit flipped on the card): the cloud would deduplicate the new
// reading away, or the cursor would already be past it.
func (s *Store) setFloor(tx *bolt.Tx, logLast uint64) {
	floor, reason := uint64(0), ""
	raise := func(seq uint64, why string) {
		if seq > floor {
			floor, reason = seq, why
		}
	}
	raise(getUint(tx.Bucket(bMeta), kAcked), "the cloud acknowledged it")
	c := tx.Bucket(bOutbox).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if b, err := decodeBatch(k, v); err == nil {
			raise(b.Last, "a batch up to it was recorded for upload")
		}
	}
	c = tx.Bucket(bDeadLetters).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if d, err := decodeDeadLetter(k, v); err == nil {
			raise(d.Last, "a dead letter up to it was recorded")
		}
	}
	last := max(s.lastSeq.Load(), logLast)
	if floor > last {
		s.log.Error("store: the log ends below what the uplink already recorded: readings were lost from the log; new readings start above it",
			"log_ends_at", last, "recorded_up_to", floor, "because", reason)
		last = floor
	}
	s.lastSeq.Store(last)
}

// loadDamage loads what earlier replays found wrong in the log, adds the
// places found now that no earlier replay reported (a damaged segment is
// replayed until a checkpoint releases it), and reports whether it added
// any.
func (s *Store) loadDamage(tx *bolt.Tx, found []wal.Damage) bool {
	meta := tx.Bucket(bMeta)
	d := logDamage{torn: getUint(meta, kTornTails), corrupt: getUint(meta, kLogCorrupt), lost: getUint(meta, kLostReadings)}
	if v := meta.Get(kLogDamage); v != nil {
		if err := json.Unmarshal(v, &d.places); err != nil {
			s.log.Warn("store: the list of log damage is unreadable; starting it afresh", "err", err)
		}
	}
	added := false
	for _, w := range found {
		p := LogDamage{Kind: w.Kind, File: w.File, Offset: w.Offset, First: w.First, Last: w.Last, Found: s.opts.Now().UTC()}
		if slices.ContainsFunc(d.places, func(q LogDamage) bool { return q.key() == p.key() }) {
			continue
		}
		added = true
		d.places = append(d.places, p)
		if !p.Lost() {
			d.torn++
			continue
		}
		d.corrupt++
		if p.First > 0 && p.Last >= p.First {
			d.lost += p.Last - p.First + 1
		}
	}
	d.places = d.places[max(len(d.places)-maxDamageKept, 0):]
	s.damage = d
	return added
}

// saveDamage writes s.damage into the file.
func (s *Store) saveDamage(tx *bolt.Tx) error {
	meta := tx.Bucket(bMeta)
	v, err := json.Marshal(s.damage.places)
	if err != nil {
		return err
	}
	for _, kv := range []struct {
		k []byte
		v uint64
	}{{kTornTails, s.damage.torn}, {kLogCorrupt, s.damage.corrupt}, {kLostReadings, s.damage.lost}} {
		if err := putUint(meta, kv.k, kv.v); err != nil {
			return err
		}
	}
	return meta.Put(kLogDamage, v)
}
