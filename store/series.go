package store

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// SeriesKey names one series: a quantity measured by a source.
type SeriesKey struct {
	Source   string
	Quantity string
}

func (k SeriesKey) bytes() []byte {
	return []byte(k.Source + "\x00" + k.Quantity)
}

// seriesCache interns (source, quantity) pairs as small ids so that readings
// and index keys stay short. It is loaded at Open; only the committer adds to
// it, after the transaction that created the new ids has committed.
type seriesCache struct {
	mu     sync.RWMutex
	byKey  map[SeriesKey]uint32
	byID   map[uint32]SeriesKey
	nextID uint32
}

func (c *seriesCache) load(tx *bolt.Tx) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byKey = make(map[SeriesKey]uint32)
	c.byID = make(map[uint32]SeriesKey)
	c.nextID = uint32(getUint(tx.Bucket(bMeta), kNextSeries))
	if c.nextID == 0 {
		c.nextID = 1
	}
	return tx.Bucket(bSeries).ForEach(func(k, v []byte) error {
		src, q, ok := strings.Cut(string(k), "\x00")
		if !ok || len(v) != 4 {
			return fmt.Errorf("store: series record %q is corrupt", k)
		}
		key := SeriesKey{src, q}
		id := binary.BigEndian.Uint32(v)
		c.byKey[key] = id
		c.byID[id] = key
		return nil
	})
}

// lookup returns the id of key, if it exists.
func (c *seriesCache) lookup(key SeriesKey) (uint32, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, ok := c.byKey[key]
	return id, ok
}

// key returns the series of id.
func (c *seriesCache) key(id uint32) (SeriesKey, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	k, ok := c.byID[id]
	return k, ok
}

// lookupTx is lookup, then tx's series bucket: a checkpoint publishes its
// new series to the cache only once it committed, so a reader whose
// transaction began in between meets their index entries first.
func (c *seriesCache) lookupTx(tx *bolt.Tx, key SeriesKey) (uint32, bool) {
	if id, ok := c.lookup(key); ok {
		return id, true
	}
	v := tx.Bucket(bSeries).Get(key.bytes())
	if len(v) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(v), true
}

// keyTx is key, then tx's series bucket (see lookupTx).
func (c *seriesCache) keyTx(tx *bolt.Tx, id uint32) (SeriesKey, bool) {
	if k, ok := c.key(id); ok {
		return k, true
	}
	var found SeriesKey
	ok := false
	c2 := tx.Bucket(bSeries).Cursor()
	for k, v := c2.First(); k != nil && !ok; k, v = c2.Next() {
		if len(v) == 4 && binary.BigEndian.Uint32(v) == id {
			src, q, _ := strings.Cut(string(k), "\x00")
			found, ok = SeriesKey{src, q}, true
		}
	}
	return found, ok
}

// all returns every series, in no particular order.
func (c *seriesCache) all() map[uint32]SeriesKey {
	c.mu.RLock()
	defer c.mu.RUnlock()
	m := make(map[uint32]SeriesKey, len(c.byID))
	for id, k := range c.byID {
		m[id] = k
	}
	return m
}

// seriesTx assigns ids to new series inside one write transaction and
// publishes them to the cache only once that transaction committed.
type seriesTx struct {
	c     *seriesCache
	added map[SeriesKey]uint32
	next  uint32
}

func (c *seriesCache) begin() *seriesTx {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return &seriesTx{c: c, next: c.nextID}
}

// id returns key's series id, creating the series in tx if it is new.
func (st *seriesTx) id(tx *bolt.Tx, key SeriesKey) (uint32, error) {
	if id, ok := st.c.lookup(key); ok {
		return id, nil
	}
	if id, ok := st.added[key]; ok {
		return id, nil
	}
	id := st.next
	st.next++
	if err := tx.Bucket(bSeries).Put(key.bytes(), binary.BigEndian.AppendUint32(nil, id)); err != nil {
		return 0, fmt.Errorf("store: add series %s/%s: %w", key.Source, key.Quantity, err)
	}
	if err := putUint(tx.Bucket(bMeta), kNextSeries, uint64(st.next)); err != nil {
		return 0, err
	}
	if st.added == nil {
		st.added = make(map[SeriesKey]uint32)
	}
	st.added[key] = id
	return id, nil
}

// publish makes the series created in the committed transaction visible.
func (st *seriesTx) publish() {
	if len(st.added) == 0 {
		return
	}
	st.c.mu.Lock()
	defer st.c.mu.Unlock()
	for k, id := range st.added {
		st.c.byKey[k] = id
		st.c.byID[id] = k
	}
	st.c.nextID = st.next
}
