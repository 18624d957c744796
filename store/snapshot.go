package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// snapshot is one consistent view of every reading: a bbolt transaction
// and the head's readings past the checkpoint that transaction sees.
// Readings up to ckpt are in bbolt, later ones in the head; a reading is in
// exactly one of them, whatever a concurrent checkpoint is doing. Every read
// of readings goes through it, so the head is merged in one place.
type snapshot struct {
	s    *Store
	tx   *bolt.Tx
	h    *head // h.mu is held shared while the snapshot is used
	ckpt uint64
}

// read runs fn on a snapshot in a read transaction. The head is locked
// before the transaction begins: a checkpoint that commits in between then
// cannot drop from the head what this transaction does not see in bbolt.
func (s *Store) read(fn func(*snapshot) error) error {
	s.head.mu.RLock()
	defer s.head.mu.RUnlock()
	return s.view(func(tx *bolt.Tx) error {
		return fn(&snapshot{s: s, tx: tx, h: s.head, ckpt: getUint(tx.Bucket(bMeta), kLastSeq)})
	})
}

// change runs fn on a snapshot in a write transaction. No checkpoint can
// commit while it runs (bbolt has one writer), so the head is locked only
// while fn runs and is released before the commit's fsync.
func (s *Store) change(fn func(*snapshot) error) error {
	return s.update(func(tx *bolt.Tx) error {
		s.head.mu.RLock()
		defer s.head.mu.RUnlock()
		return fn(&snapshot{s: s, tx: tx, h: s.head, ckpt: getUint(tx.Bucket(bMeta), kLastSeq)})
	})
}

// lastSeq is the newest durable seq.
func (sn *snapshot) lastSeq() uint64 {
	if n := sn.h.rs.len(); n > 0 && sn.h.rs.at(n-1).seq > sn.ckpt {
		return sn.h.rs.at(n - 1).seq
	}
	return sn.ckpt
}

// count is how many readings the store holds.
func (sn *snapshot) count() uint64 {
	return getUint(sn.tx.Bucket(bMeta), kCount) + uint64(sn.h.rs.len()-sn.headFrom(sn.ckpt+1))
}

// headFrom returns the index in the head of the first entry with a seq ≥
// seq past the checkpoint.
func (sn *snapshot) headFrom(seq uint64) int {
	return sn.h.index(max(seq, sn.ckpt+1))
}

// each calls fn with every reading whose seq is > after, in seq order,
// until fn returns false or an error.
func (sn *snapshot) each(after uint64, fn func(Reading) (bool, error)) error {
	if after < sn.ckpt {
		c := sn.tx.Bucket(bReadings).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil; k, v = c.Next() {
			seq := binary.BigEndian.Uint64(k)
			if seq > sn.ckpt {
				break
			}
			r, err := sn.decode(seq, v)
			if err != nil {
				return err
			}
			if more, err := fn(r); err != nil || !more {
				return err
			}
		}
	}
	for i := sn.headFrom(after + 1); i < sn.h.rs.len(); i++ {
		if more, err := fn(sn.h.reading(sn.h.rs.at(i))); err != nil || !more {
			return err
		}
	}
	return nil
}

// countRange counts the readings with a seq in [from, to].
func (sn *snapshot) countRange(from, to uint64) int {
	if to < from {
		return 0
	}
	n := 0
	if from <= sn.ckpt {
		c := sn.tx.Bucket(bReadings).Cursor()
		end := min(to, sn.ckpt)
		for k, _ := c.Seek(seqKey(from)); k != nil && binary.BigEndian.Uint64(k) <= end; k, _ = c.Next() {
			n++
		}
	}
	lo := sn.headFrom(from)
	return n + sort.Search(sn.h.rs.len()-lo, func(i int) bool { return sn.h.rs.at(lo+i).seq > to })
}

// entry is one reading as a series scan sees it: without its unit, which
// only snapshot.fetch reads.
type entry struct {
	seq    uint64
	t      int64 // ns since the epoch
	v      float64
	clock  Clock
	inHead bool
}

// fetch returns the whole reading of e.
func (sn *snapshot) fetch(e entry) (Reading, error) {
	if e.inHead {
		if he, ok := sn.h.find(e.seq); ok {
			return sn.h.reading(he), nil
		}
		return Reading{}, fmt.Errorf("store: head lost reading %d", e.seq)
	}
	return sn.decode(e.seq, sn.tx.Bucket(bReadings).Get(seqKey(e.seq)))
}

// scanPos is where a series scan starts: at (t, seq), inclusive.
type scanPos struct {
	t   int64
	seq uint64
}

// scanFrom is the position of the first reading at or after from.
func scanFrom(from time.Time) scanPos {
	if from.IsZero() {
		return scanPos{t: math.MinInt64}
	}
	return scanPos{t: from.UnixNano()}
}

// scan calls fn with key's readings from pos on and before to (zero: no
// end), in (time, seq) order, merging bbolt's index with the head, until fn
// returns false or an error, or it has had limit readings (0: no limit).
// Stopped by the limit with readings left, it returns the position of the
// next and more.
func (sn *snapshot) scan(key SeriesKey, pos scanPos, to time.Time, limit int, fn func(*snapshot, entry) (bool, error)) (next scanPos, more bool, err error) {
	var bc *bolt.Cursor
	var bk, bv []byte
	sid, inFile := sn.s.series.lookupTx(sn.tx, key)
	if inFile {
		start := binary.BigEndian.AppendUint32(nil, sid)
		start = binary.BigEndian.AppendUint64(start, uint64(pos.t)^(1<<63))
		start = binary.BigEndian.AppendUint64(start, pos.seq)
		bc = sn.tx.Bucket(bIndex).Cursor()
		bk, bv = bc.Seek(start)
	}
	var from time.Time
	if pos.t != math.MinInt64 {
		from = time.Unix(0, pos.t)
	}
	hs := sn.h.span(key, from, to)
	for len(hs) > 0 && sn.before(hs[0], pos) { // hs is in (time, seq) order
		hs = hs[1:]
	}
	toNs, n := to.UnixNano(), 0
	for {
		for len(hs) > 0 && hs[0] <= sn.ckpt { // checkpointed: bbolt's copy counts
			hs = hs[1:]
		}
		var e entry
		if bk != nil { // the index key is sid | time | seq: 20 bytes
			if len(bk) != 20 || binary.BigEndian.Uint32(bk) != sid {
				if len(bk) != 20 && bytes.Compare(bk, binary.BigEndian.AppendUint32(nil, sid+1)) < 0 {
					return next, false, fmt.Errorf("store: index key of %d bytes is corrupt", len(bk))
				}
				bk = nil // past the series
			} else if e.t = int64(binary.BigEndian.Uint64(bk[4:12]) ^ (1 << 63)); !to.IsZero() && e.t >= toNs {
				bk = nil // past the range
			}
		}
		switch {
		case bk != nil && (len(hs) == 0 || sn.fileFirst(e.t, bk, hs[0])):
			e.seq, e.v = binary.BigEndian.Uint64(bk[12:]), math.Float64frombits(binary.BigEndian.Uint64(bv))
			if len(bv) > 8 {
				e.clock = Clock(bv[8])
			}
			bk, bv = bc.Next()
		case len(hs) > 0:
			he := sn.h.at(hs[0])
			e = entry{seq: he.seq, t: he.t, v: he.v, clock: he.clock, inHead: true}
			hs = hs[1:]
		default:
			return next, false, nil
		}
		if limit > 0 && n == limit {
			return scanPos{t: e.t, seq: e.seq}, true, nil
		}
		n++
		if more, err := fn(sn, e); err != nil || !more {
			return next, false, err
		}
	}
}

// before reports whether the head entry seq sorts before pos.
func (sn *snapshot) before(seq uint64, pos scanPos) bool {
	e := sn.h.at(seq)
	return e.t < pos.t || (e.t == pos.t && e.seq < pos.seq)
}

// fileFirst reports whether the index entry at time t with key k sorts
// before the head entry seq.
func (sn *snapshot) fileFirst(t int64, k []byte, seq uint64) bool {
	e := sn.h.at(seq)
	return t < e.t || (t == e.t && binary.BigEndian.Uint64(k[12:]) < e.seq)
}

// latest returns key's newest reading by (time, seq).
func (sn *snapshot) latest(key SeriesKey) (Reading, bool, error) {
	var best *entry
	if sid, ok := sn.s.series.lookupTx(sn.tx, key); ok {
		c := sn.tx.Bucket(bIndex).Cursor()
		prefix := binary.BigEndian.AppendUint32(nil, sid)
		k, _ := c.Seek(binary.BigEndian.AppendUint32(nil, sid+1))
		var v []byte
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		if k != nil && bytes.HasPrefix(k, prefix) && len(k) == 20 {
			best = &entry{seq: binary.BigEndian.Uint64(k[12:]), t: int64(binary.BigEndian.Uint64(k[4:12]) ^ (1 << 63)),
				v: math.Float64frombits(binary.BigEndian.Uint64(v))}
		}
	}
	if ser := sn.h.series[key]; ser != nil {
		for i := len(ser.seqs) - 1; i >= 0; i-- {
			if seq := ser.seqs[i]; seq > sn.ckpt {
				he := sn.h.at(seq)
				if best == nil || he.t > best.t || (he.t == best.t && he.seq > best.seq) {
					best = &entry{seq: he.seq, inHead: true}
				}
				break
			}
		}
	}
	if best == nil {
		return Reading{}, false, nil
	}
	r, err := sn.fetch(*best)
	return r, err == nil, err
}
