package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"fieldgate/store/storetest"
)

// TestPowerCuts cuts the power thousands of times while writers append
// (waited, as MQTT QoS 1, and queued, as sensor polls) under a log whose
// file layer keeps any subset of the unsynced pages and tears some; a
// quarter of the cycles end instead with the process dying (its unsynced
// writes left in the page cache for a later cut to take), and some with an
// fdatasync failing with EIO mid-flight. After every cycle: each
// acknowledged reading is there with its seq and content; every stored
// reading is one that was written, whole, once; a seq once seen keeps its
// reading (never reused); bbolt's check passes.
func TestPowerCuts(t *testing.T) {
	t.Parallel() // the three long randomized suites share the CPUs
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 21))
	fs := storetest.NewCrashFS(rand.New(rand.NewPCG(seed, 22)))
	opts := Options{anyTiming: true, Path: filepath.Join(t.TempDir(), "cut.db"), LogFS: fs, SegmentSize: 64 << 10,
		openBolt: noSyncBolt, Config: Config{CommitInterval: time.Millisecond, Head: HeadConfig{MaxReadings: 400}}}
	cuts := 2000 / raceScale
	if testing.Short() {
		cuts = 200
	}
	written := map[float64]Reading{} // every reading handed to the store, by value
	acked := map[uint64]float64{}    // seq → value of acknowledged readings
	var recent []uint64              // seqs acknowledged since the last cut
	seen := map[uint64]float64{}     // seq → value of readings seen after a cut
	var mu sync.Mutex
	next := 0.0
	for cut := range cuts {
		opts.LogFS = fs.Process() // the last process's leftovers can change nothing
		s, err := Open(opts)
		if err != nil {
			t.Fatalf("cut %d (seed %d): Open: %v", cut, seed, err)
		}
		// Readings up to the checkpoint are in bbolt, which these cuts do not
		// touch: every 20th cut checks them too, the others what the log held.
		var since uint64
		if cut%20 != 0 {
			mustDo(t, s.view(func(tx *bolt.Tx) error { since = getUint(tx.Bucket(bMeta), kLastSeq); return nil }))
		}
		all, err := s.ReadingsAfter(since, 0)
		mustDo(t, err)
		byValue := map[float64]uint64{}
		for _, r := range all {
			w, ok := written[r.Value]
			switch {
			case !ok:
				t.Fatalf("cut %d (seed %d): reading %v was never written", cut, seed, r)
			case !sameReading(r, w):
				t.Fatalf("cut %d (seed %d): reading %v was written as %v", cut, seed, r, w)
			case byValue[r.Value] != 0:
				t.Fatalf("cut %d (seed %d): reading %v stored twice (also seq %d)", cut, seed, r, byValue[r.Value])
			}
			if v, ok := seen[r.Seq]; ok && v != r.Value {
				t.Fatalf("cut %d (seed %d): seq %d held %v and now %v: reused", cut, seed, r.Seq, v, r.Value)
			}
			byValue[r.Value] = r.Seq
			seen[r.Seq] = r.Value
		}
		check := recent
		if since == 0 {
			check = slices.Collect(maps.Keys(acked))
		}
		for _, seq := range check {
			if v := acked[seq]; seq > since && byValue[v] != seq {
				t.Fatalf("cut %d (seed %d): acknowledged reading %d (%v) is missing", cut, seed, seq, v)
			}
		}
		recent = recent[:0]
		if cut%100 == 0 {
			mustCheck(t, s)
		}

		// Writers run until the power goes, after a random number of acks
		// (or they wrote their share), so the cut lands mid-flight.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		cutAfter := rng.IntN(12)
		acks := make(chan struct{}, 100)
		for w := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 8 {
					select {
					case <-stop:
						return
					default:
					}
					mu.Lock()
					rs := make([]Reading, 1+i%3)
					for j := range rs {
						next++
						rs[j] = Reading{Source: fmt.Sprintf("node-%d", w), Quantity: "temperature", Value: next, Unit: "Cel", Time: t0.Add(time.Duration(next) * time.Second)}
						written[next] = rs[j]
					}
					mu.Unlock()
					if w == 2 {
						if s.Enqueue(context.Background(), rs...) != nil {
							return
						}
						continue
					}
					if s.Append(context.Background(), rs...) != nil {
						return
					}
					mu.Lock()
					for _, r := range rs {
						acked[r.Seq] = r.Value
						recent = append(recent, r.Seq)
					}
					mu.Unlock()
					acks <- struct{}{}
				}
			}()
		}
		writers := make(chan struct{})
		go func() { wg.Wait(); close(writers) }()
		if rng.IntN(8) == 0 {
			failSegmentSync(fs) // an undervoltage: one sync fails, the log recovers
		}
	wait:
		for range cutAfter {
			select {
			case <-acks:
			case <-writers:
				break wait
			}
		}
		if rng.IntN(4) == 0 {
			fs.Crash()
		} else {
			fs.PowerCut()
		}
		fs.SetFault(nil)
		close(stop)
		s.abandon()
		wg.Wait()
	}
	t.Logf("%d power cuts: %d readings acknowledged, all kept", cuts, len(acked))
}

// TestTornTailIsCountedOnce: a record torn at the log's tail is cut at
// Open and counted in Stats, and the count is kept in the file: a later
// Open, which finds no torn tail, still reports it, and adds no other.
func TestTornTailIsCountedOnce(t *testing.T) {
	fs := storetest.NewCrashFS(rand.New(rand.NewPCG(1, 2)))
	opts := Options{Path: filepath.Join(t.TempDir(), "torn.db"), LogFS: fs, openBolt: noSyncBolt}
	s := mustOpen(t, opts)
	for i := range 3 {
		mustAppend(t, s, reading("node-1", "temperature", i, float64(i)))
	}
	fs.PowerCut()
	s.abandon()

	// Garble the payload of the last record, as a write cut short would.
	dir := s.logOpts.Dir
	names, err := fs.List(dir)
	mustDo(t, err)
	f, err := fs.Open(filepath.Join(dir, names[0]))
	mustDo(t, err)
	b := make([]byte, 4096)
	_, err = f.ReadAt(b, 0)
	mustDo(t, err)
	off := 40 // segment header; then records of a 32-byte header and a payload
	for range 2 {
		off += 32 + int(binary.BigEndian.Uint32(b[off+4:]))
	}
	_, err = f.WriteAt([]byte{^b[off+38]}, int64(off+38))
	mustDo(t, err)
	mustDo(t, f.Sync())
	mustDo(t, f.Close())

	for open := range 2 {
		s = mustOpen(t, opts)
		if st := s.Stats(); st.TornTails != 1 || st.Readings != 2 {
			t.Errorf("open %d: %d torn tails, %d readings; want 1 and the 2 before it", open+1, st.TornTails, st.Readings)
		}
		mustDo(t, s.Close())
	}
}
