// Package armv6 runs the gateway's suites and daemon under ARMv6 emulation
// (the Pi Zero and 1, 32 bits): see package onarm.
package armv6
