package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"fieldgate/broker"
	"fieldgate/store"
)

// notify sends a state to systemd (Type=notify). Outside systemd, without
// NOTIFY_SOCKET, it does nothing.
func notify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("systemd notify failed", "err", err)
	}
}

// healthCheck is what the watchdog requires before each ping: the store's
// committer answers (a hung disk or a stuck fsync fails it) and the MQTT
// listener accepts connections.
func healthCheck(st *store.Store, mq *broker.Broker, api *apiServer) func(context.Context) error {
	return func(ctx context.Context) error {
		// A committer that answers but cannot write (disk full) is healthy
		// as a process: a restart would not free space, and would lose the
		// readings it carries in memory. One that does not answer is not,
		// nor a log that a failed sync broke and that the committer has not
		// recovered in time, nor a failed store: a restart replays them
		// from what is on disk.
		if err := st.Ping(ctx); err != nil && (ctx.Err() != nil || store.Unhealthy(err)) {
			return fmt.Errorf("store: %w", err)
		}
		// A real CONNECT→CONNACK round trip: an accept loop that stopped or
		// a broker that no longer reads fails it. A connection limit that
		// turns it away (clients flooding the port) is not cured by a
		// restart; /readyz reports it.
		if mq != nil {
			if err := mq.Probe(ctx); err != nil && !errors.Is(err, broker.ErrBusy) {
				return fmt.Errorf("mqtt: %w", err)
			}
		}
		if api != nil {
			return api.check(ctx)
		}
		return nil
	}
}

// watchdog feeds systemd's watchdog every half interval while health
// passes. When it fails, no ping goes out: after WatchdogSec systemd kills
// and restarts the daemon, which is what a wedged gateway needs.
func watchdog(ctx context.Context, log *slog.Logger, interval time.Duration, health func(context.Context) error, ping func()) {
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, interval/4)
		err := health(hctx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("health check failed; withholding the watchdog ping", "err", err)
			failing = true
		case err == nil:
			if failing {
				log.Info("health check passes again")
				failing = false
			}
			ping()
		}
	}
}
