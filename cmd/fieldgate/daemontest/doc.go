// Package daemontest runs the fieldgate daemon as a subprocess for tests:
// it builds the binary, starts it with a configuration and follows what it
// logs, talks to its API, and plays systemd's side of sd_notify (what
// the machine offers the tests is package testenv's). The daemon's own end-to-end
// tests use it, and so do the long runs that are test binaries of their
// own: the chaos run, the suites under ARM emulation and the Debian
// packages.
package daemontest
