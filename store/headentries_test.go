package store

import "testing"

// TestEntriesKeepOrderAcrossBlocks pushes and drops across block
// boundaries and checks every position against a plain slice.
func TestEntriesKeepOrderAcrossBlocks(t *testing.T) {
	var es entries
	var model []uint64
	next := uint64(1)
	push := func(k int) {
		for range k {
			es.push(headEntry{seq: next})
			model = append(model, next)
			next++
		}
	}
	check := func(step string) {
		t.Helper()
		if es.len() != len(model) {
			t.Fatalf("%s: len %d, want %d", step, es.len(), len(model))
		}
		for i, seq := range model {
			if got := es.at(i).seq; got != seq {
				t.Fatalf("%s: entry %d has seq %d, want %d", step, i, got, seq)
			}
		}
		if want := (es.off + es.n + entryBlock - 1) / entryBlock; len(es.blocks) != want {
			t.Fatalf("%s: %d blocks held for %d entries at offset %d, want %d", step, len(es.blocks), es.n, es.off, want)
		}
	}
	drop := func(k int) {
		es.dropFront(k)
		model = model[min(k, len(model)):]
	}
	push(entryBlock - 1)
	check("one short of a block")
	push(2)
	check("one into the second block")
	drop(entryBlock - 5)
	check("most of the first block dropped")
	drop(5)
	check("the first block dropped exactly")
	push(3*entryBlock + 7)
	drop(2*entryBlock + 1)
	check("dropped across blocks")
	drop(es.len() + 10)
	check("dropped more than held")
	if es.blocks != nil || es.off != 0 {
		t.Fatalf("an empty head keeps %d blocks at offset %d", len(es.blocks), es.off)
	}
	push(5)
	check("filled again after emptying")
}
