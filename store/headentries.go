package store

import "sync"

// entryBlock is how many entries one block of the head holds (48 KiB).
const entryBlock = 1024

// blockPool recycles the blocks checkpoints free for the readings that
// arrive next, so a head in its steady state allocates nothing.
var blockPool = sync.Pool{New: func() any { return new([entryBlock]headEntry) }}

// entries is the head's readings in seq order, kept in fixed-size blocks:
// adding one never copies the others (a single slice would be copied
// whole, under the head's lock, each time it grew), and a checkpoint drops
// the oldest by releasing whole blocks.
type entries struct {
	blocks []*[entryBlock]headEntry
	off    int // entries already dropped from blocks[0]
	n      int // entries held
}

// len is how many entries there are.
func (es *entries) len() int { return es.n }

// at returns the i-th entry, 0 the oldest.
func (es *entries) at(i int) *headEntry {
	i += es.off
	return &es.blocks[i/entryBlock][i%entryBlock]
}

// push adds e after the newest.
func (es *entries) push(e headEntry) {
	i := es.off + es.n
	if i == len(es.blocks)*entryBlock {
		es.blocks = append(es.blocks, blockPool.Get().(*[entryBlock]headEntry))
	}
	es.blocks[i/entryBlock][i%entryBlock] = e
	es.n++
}

// dropFront removes the k oldest entries and recycles the blocks that
// held only those.
func (es *entries) dropFront(k int) {
	k = min(k, es.n)
	es.off += k
	es.n -= k
	full := es.off / entryBlock
	if es.n == 0 {
		full = len(es.blocks) // nothing left: every block goes back
	}
	for i := range full {
		blockPool.Put(es.blocks[i])
		es.blocks[i] = nil
	}
	es.blocks = es.blocks[full:]
	es.off %= entryBlock
	if es.n == 0 {
		es.blocks, es.off = nil, 0
	}
}
