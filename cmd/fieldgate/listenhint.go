package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"fieldgate/cmd/fieldgate/internal/config"
)

// listenHint says which setting to change when a listener cannot listen
// on addr: the configuration key and the environment variable for it.
func listenHint(key, addr string, err error) error {
	why := "cannot listen there"
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		why = "another program (or another fieldgate) already listens on it"
	case errors.Is(err, syscall.EACCES):
		why = "ports below 1024 need privileges"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		why = "this machine has no such address"
	}
	return fmt.Errorf("%s %q: %w: %s; set %s (or %s) to another address, or to \"\" to turn it off",
		key, addr, err, why, key, config.EnvName(key))
}

// checkListen checks a listener's address: "" (off), or host:port with a
// port from 0 (any free one) to 65535, by number: a service name would
// need /etc/services, and a typo there fails only at start.
func checkListen(key, addr string, add func(path, format string, args ...any)) {
	if addr == "" {
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		add(key, "%q: want host:port or :port", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		add(key, "%q: the port must be a number from 1 to 65535 (0: any free port)", addr)
	}
}
