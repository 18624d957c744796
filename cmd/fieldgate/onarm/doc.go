// Package onarm proves the gateway on the Raspberry Pi's CPUs without a
// Pi: Test runs the suites of the store, broker, sensors and uplink,
// cross-compiled for a Target, under qemu-user, then the daemon itself.
// Each Target is a test binary of its own (./armv6, ./arm64), run with
// FIELDGATE_TEST_LONG=1, so that neither needs more than a few minutes.
package onarm
