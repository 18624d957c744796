// Package arm64 runs the gateway's suites and daemon under arm64 emulation
// (a Pi 3 or later on a 64-bit OS): see package onarm.
package arm64
