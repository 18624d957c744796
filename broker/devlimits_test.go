package broker

import (
	"fmt"
	"testing"
	"time"
)

// TestPrunedBucketsAreFetchedAgain: a connection keeps its device's
// buckets between publishes. Once prune drops them (the map is full and
// they are full again), its next publish spends from the device's new
// ones, the same that another connection of the device gets, so that a
// device never spends from two buckets at once.
func TestPrunedBucketsAreFetchedAgain(t *testing.T) {
	l := newDevLimits(Options{Config: Config{PublishRate: 1, PublishBurst: 2, ConnectsPerMinute: 60, ConnectBurst: 1}})
	now := time.Unix(1_800_000_000, 0)
	var held *devLimit
	if !l.publish(&held, "esp32-a", now) || held == nil {
		t.Fatal("the first publish was refused or left nothing held")
	}
	first := held
	// Fill the map past its bound once esp32-a's bucket is full again,
	// so that the next device's entry prunes it.
	later := now.Add(time.Minute)
	l.mu.Lock()
	for i := len(l.devs); i < maxLimitedDevices; i++ {
		l.get(fmt.Sprintf("filler-%d", i), later)
	}
	l.get("esp32-b", later)
	_, kept := l.devs["esp32-a"]
	l.mu.Unlock()
	if kept || !first.dropped.Load() {
		t.Fatalf("esp32-a's full bucket was not pruned (in the map %v, dropped %v)", kept, first.dropped.Load())
	}
	// Two publishes drain the burst of the device's buckets, whichever
	// connection spends them.
	var other *devLimit
	if !l.publish(&held, "esp32-a", later) || !l.publish(&other, "esp32-a", later) {
		t.Fatal("the burst of the new buckets was refused")
	}
	if held == first || held != other {
		t.Fatalf("the held buckets were not fetched again: old %p, held %p, other connection's %p", first, held, other)
	}
	if l.publish(&held, "esp32-a", later) || l.publish(&other, "esp32-a", later) {
		t.Error("a publish past the device's burst was allowed: its connections spend from two buckets")
	}
}
