// Package chaos holds the daemon's chaos run (TestChaos), a test binary of
// its own: the daemon, a fleet of nodes and the cloud under a schedule of
// faults, after which every acknowledged reading must be in the cloud
// exactly once. One pass through the faults by default, two minutes with
// FIELDGATE_TEST_LONG=1 (CI), any length by hand:
//
//	go test -run TestChaos ./cmd/fieldgate/chaos -args -chaos.duration=30m
package chaos
