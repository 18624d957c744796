package store

import (
	"slices"
	"sort"
	"sync"
	"time"
)

// head holds the readings that are durable in the log but not yet
// checkpointed into bbolt, indexed like bbolt's buckets: by seq, and per
// series by (time, seq). Readers hold mu shared for the span of one
// snapshot; the committer takes it exclusively to add a synced group, the
// checkpointer to drop what reached bbolt.
type head struct {
	mu      sync.RWMutex
	rs      entries // by seq, ascending; no pointers, so the GC never scans them
	series  map[SeriesKey]*headSeries
	sers    []*headSeries     // by headEntry.ser
	units   []string          // by headEntry.unit
	unitIDs map[string]uint32 // the index of each unit in units
	strs    map[string]string // interned sources and quantities
	pending []uint64          // seqs waiting for clock repair, ascending
	since   time.Time         // when the oldest reading entered
}

// headEntry is one reading of the head.
type headEntry struct {
	seq   uint64
	t     int64 // ns since the epoch
	v     float64
	mono  time.Duration
	ser   uint32 // index in head.sers
	unit  uint32 // index in head.units
	clock Clock
}

// headSeries lists one series' readings in the head by (time, seq).
type headSeries struct {
	key     SeriesKey
	id      uint32 // its index in head.sers
	seqs    []uint64
	lastT   int64  // (time, seq) of its newest entry, so that the usual
	lastSeq uint64 // append in time order needs no look-up
}

func newHead() *head {
	return &head{series: map[SeriesKey]*headSeries{}, strs: map[string]string{}, unitIDs: map[string]uint32{}}
}

// intern returns the head's copy of b as a string. h.mu is held
// exclusively (or the head is not shared yet).
func (h *head) intern(b []byte) string {
	if s, ok := h.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	h.strs[s] = s
	return s
}

// insert adds rs, whose seqs follow the head's last, and notes which wait
// for clock repair.
func (h *head) insert(rs []Reading, now time.Time, repairable func(*Reading) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.insertLocked(rs, now, repairable)
}

func (h *head) insertLocked(rs []Reading, now time.Time, repairable func(*Reading) bool) {
	if h.rs.len() == 0 && len(rs) > 0 {
		h.since = now
	}
	var last *headSeries // readings of one call are mostly of one series
	for i := range rs {
		r := &rs[i]
		ser := last
		if ser == nil || ser.key.Source != r.Source || ser.key.Quantity != r.Quantity {
			ser = h.seriesOf(r.Source, r.Quantity)
			last = ser
		}
		e := headEntry{seq: r.Seq, t: r.Time.UnixNano(), v: r.Value, mono: r.Mono, ser: ser.id, unit: h.unitID(r.Unit), clock: r.Clock}
		h.rs.push(e)
		n := len(ser.seqs)
		if n == 0 || e.t > ser.lastT || (e.t == ser.lastT && e.seq > ser.lastSeq) {
			ser.seqs = append(ser.seqs, e.seq)
			ser.lastT, ser.lastSeq = e.t, e.seq
		} else { // an older time than the series' newest: keep the order
			at := sort.Search(n, func(j int) bool { return h.less(e.t, e.seq, ser.seqs[j]) })
			ser.seqs = slices.Insert(ser.seqs, at, e.seq)
		}
		if repairable(r) {
			h.pending = append(h.pending, r.Seq)
		}
	}
}

// seriesOf returns the head's list of the series, creating it. A series
// stays listed (empty after checkpoints) until the head empties, so the
// tables grow only with distinct series.
func (h *head) seriesOf(source, quantity string) *headSeries {
	if ser := h.series[SeriesKey{source, quantity}]; ser != nil {
		return ser
	}
	key := SeriesKey{h.internString(source), h.internString(quantity)}
	ser := &headSeries{key: key, id: uint32(len(h.sers))}
	h.series[key] = ser
	h.sers = append(h.sers, ser)
	return ser
}

// unitID returns the index of unit in h.units, adding it.
func (h *head) unitID(unit string) uint32 {
	if id, ok := h.unitIDs[unit]; ok {
		return id
	}
	h.units = append(h.units, unit)
	id := uint32(len(h.units) - 1)
	h.unitIDs[unit] = id
	return id
}

func (h *head) internString(s string) string {
	if v, ok := h.strs[s]; ok {
		return v
	}
	h.strs[s] = s
	return s
}

// less reports whether (t, seq) sorts before the entry of other.
func (h *head) less(t int64, seq, other uint64) bool {
	o := h.at(other)
	return t < o.t || (t == o.t && seq < o.seq)
}

// index returns the position of the first entry with a seq ≥ seq.
func (h *head) index(seq uint64) int {
	n := h.rs.len()
	if n == 0 {
		return 0
	}
	if first := h.rs.at(0).seq; seq >= first && seq-first < uint64(n) && h.rs.at(int(seq-first)).seq == seq {
		return int(seq - first) // dense: the usual case
	}
	return sort.Search(n, func(i int) bool { return h.rs.at(i).seq >= seq })
}

// at returns the entry with the given seq, which must be in the head.
func (h *head) at(seq uint64) *headEntry { return h.rs.at(h.index(seq)) }

// find returns the entry with seq, if the head has it.
func (h *head) find(seq uint64) (*headEntry, bool) {
	i := h.index(seq)
	if i < h.rs.len() && h.rs.at(i).seq == seq {
		return h.rs.at(i), true
	}
	return nil, false
}

// reading returns e as a Reading.
func (h *head) reading(e *headEntry) Reading {
	key := h.sers[e.ser].key
	return Reading{Seq: e.seq, Source: key.Source, Quantity: key.Quantity, Value: e.v,
		Unit: h.units[e.unit], Time: time.Unix(0, e.t).UTC(), Clock: e.clock, Mono: e.mono}
}

// span returns the part of key's (time, seq) list that falls in [from, to)
// (zero times are unbounded).
func (h *head) span(key SeriesKey, from, to time.Time) []uint64 {
	ser := h.series[key]
	if ser == nil {
		return nil
	}
	lo, hi := 0, len(ser.seqs)
	if !from.IsZero() {
		f := from.UnixNano()
		lo = sort.Search(hi, func(j int) bool { return h.at(ser.seqs[j]).t >= f })
	}
	if !to.IsZero() {
		t := to.UnixNano()
		hi = lo + sort.Search(hi-lo, func(j int) bool { return h.at(ser.seqs[lo+j]).t >= t })
	}
	return ser.seqs[lo:hi]
}

// dropThrough removes the readings with a seq ≤ seq: a checkpoint put them
// into bbolt.
func (h *head) dropThrough(seq uint64, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := h.index(seq + 1)
	if k == 0 {
		return
	}
	h.rs.dropFront(k)
	for _, ser := range h.series {
		ser.seqs = slices.DeleteFunc(ser.seqs, func(s uint64) bool { return s <= seq })
	}
	h.pending = slices.DeleteFunc(h.pending, func(s uint64) bool { return s <= seq })
	h.since = now
	if h.rs.len() == 0 { // start the tables afresh, so they cannot grow for ever
		h.series, h.sers, h.units = map[SeriesKey]*headSeries{}, nil, nil
		h.unitIDs, h.strs = map[string]uint32{}, map[string]string{}
	}
}

// waitingSince counts the readings from seq on that were stamped by an
// unsynchronised clock with their time since boot: those that wait, or
// waited, for clock repair.
func (h *head) waitingSince(seq uint64) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for i := range h.rs.len() {
		if e := h.rs.at(i); e.clock == ClockUnsynced && e.mono > 0 && e.seq >= seq {
			n++
		}
	}
	return n
}

// clearPendingBelow forgets that the readings below seq wait for clock
// repair.
func (h *head) clearPendingBelow(seq uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pending = slices.DeleteFunc(h.pending, func(s uint64) bool { return s < seq })
}

// headStats is what the checkpointer and Stats need to know of the head.
type headStats struct {
	readings int
	first    uint64 // 0 if empty
	last     uint64
	since    time.Time
}

func (h *head) stats() headStats {
	h.mu.RLock()
	defer h.mu.RUnlock()
	st := headStats{readings: h.rs.len(), since: h.since}
	if n := h.rs.len(); n > 0 {
		st.first, st.last = h.rs.at(0).seq, h.rs.at(n-1).seq
	}
	return st
}
