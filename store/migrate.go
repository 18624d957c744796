package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the layout this binary writes. A store with a lower
// version is migrated at Open; one with a higher version is refused.
const SchemaVersion = 4

// migrations[v] upgrades a store from schema v to v+1 inside the same write
// transaction as every other step, so a crash mid-migration leaves the old
// schema intact. Version 0 does not exist (a new store starts at 1).
var migrations = map[uint64]func(*bolt.Tx) error{
	// 2: API users and tokens.
	1: func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bUsers, bTokens} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	},
	// 3: readings waiting for the clock to sync.
	2: func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bClockRepair)
		return err
	},
	// 4: readings reach the file through a write-ahead log next to it
	// (older versions would not see what it holds), and the readings at or
	// below the outbox cursor are counted.
	3: func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		acked, below := getUint(meta, kAcked), uint64(0)
		c := tx.Bucket(bReadings).Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= acked; k, _ = c.Next() {
			below++
		}
		return putUint(meta, kBelow, below)
	},
}

// migrate brings the store in tx up to SchemaVersion.
func (s *Store) migrate(tx *bolt.Tx) error {
	meta := tx.Bucket(bMeta)
	v := getUint(meta, kSchema)
	if v > SchemaVersion {
		return fmt.Errorf("%w: %s has schema %d, this fieldgate knows up to %d; install a newer fieldgate", ErrSchemaTooNew, s.opts.Path, v, SchemaVersion)
	}
	for ; v < SchemaVersion; v++ {
		m, ok := migrations[v]
		if !ok {
			return fmt.Errorf("%w: %s has schema %d and no migration from it exists", ErrNotAStore, s.opts.Path, v)
		}
		if err := m(tx); err != nil {
			return fmt.Errorf("store: migrate schema %d to %d: %w", v, v+1, err)
		}
		s.log.Info("store: migrated schema", "from", v, "to", v+1)
	}
	return putUint(meta, kSchema, SchemaVersion)
}
