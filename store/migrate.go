package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the layout this binary writes. A store with a lower
// version is migrated at Open; one with a higher version is refused.
const SchemaVersion = 3

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
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("%w: %s lacks bucket %q", ErrNotAStore, s.opts.Path, name)
		}
	}
	return putUint(meta, kSchema, SchemaVersion)
}
