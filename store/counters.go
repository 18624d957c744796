package store

import (
	"maps"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Reasons under which dropped readings are counted. Every reading the store
// accepted and then lost is counted under exactly one of them.
const (
	// reasonFullDropOldest: deleted un-uploaded by the drop_oldest policy.
	reasonFullDropOldest = "full_drop_oldest"
	// reasonFullRejectNew: queued readings refused by the reject_new policy.
	reasonFullRejectNew = "full_reject_new"
	// reasonCommitFailed: queued readings dropped after commits kept failing
	// and the in-memory carry overflowed.
	reasonCommitFailed = "commit_failed"
	// reasonDeadLetterDiscarded: readings of dead letters a person
	// discarded; the cloud will never have them.
	reasonDeadLetterDiscarded = "dead_letter_discarded"
)

// dropCounter holds drop counts that are not yet in the counters bucket,
// because the transaction that drops them is the one that failed. The next
// successful commit persists them.
type dropCounter struct {
	mu      sync.Mutex
	pending map[string]uint64
}

func (d *dropCounter) init() { d.pending = make(map[string]uint64) }

func (d *dropCounter) add(reason string, n uint64) {
	if n == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending[reason] += n
}

func (d *dropCounter) snapshot() map[string]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.pending)
}

// persist adds the pending counts to tx; forget must follow a successful commit.
func (d *dropCounter) persist(tx *bolt.Tx) (map[string]uint64, error) {
	snap := d.snapshot()
	return snap, addCounters(tx, snap)
}

// forget removes counts that were persisted.
func (d *dropCounter) forget(persisted map[string]uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, n := range persisted {
		d.pending[k] -= n
		if d.pending[k] == 0 {
			delete(d.pending, k)
		}
	}
}

func addCounters(tx *bolt.Tx, add map[string]uint64) error {
	b := tx.Bucket(bCounters)
	for k, n := range add {
		if err := putUint(b, []byte(k), getUint(b, []byte(k))+n); err != nil {
			return err
		}
	}
	return nil
}

// Removed returns the readings the store removed over its life: those it
// lost, by reason (including drops not yet persisted because commits are
// failing), and apart from them those retention deleted after the cloud
// had them — routine, not a loss. One read transaction serves both, as
// the status page and the metrics show both on every request.
func (s *Store) Removed() (lost map[string]uint64, retired uint64, err error) {
	lost = s.c.drops.snapshot()
	err = s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bCounters)
		return b.ForEach(func(k, v []byte) error {
			if string(k) == keyRetentionDeleted {
				retired = getUint(b, k)
			} else {
				lost[string(k)] += getUint(b, k)
			}
			return nil
		})
	})
	return lost, retired, err
}
