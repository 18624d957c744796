package main

import (
	"errors"
	"fmt"
	"syscall"
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
		key, addr, err, why, key, envName(key))
}
