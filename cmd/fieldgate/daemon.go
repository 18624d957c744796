package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"fieldgate/broker"
	"fieldgate/sensors"
	"fieldgate/store"
	"fieldgate/store/clock"
	"fieldgate/store/credentials"
	"fieldgate/uplink"
)

// runDaemon opens the components in order, serves until ctx ends (SIGTERM,
// SIGINT), then stops them in reverse order within the shutdown deadline.
// stopSignals restores the default signal handling once shutdown begins, so
// a second Ctrl-C kills a shutdown that hangs. clocks are the machine's
// (clock.System) except in tests.
func runDaemon(ctx context.Context, stopSignals func(), args []string, getenv func(string) string, stderr io.Writer, clocks clock.Source) error {
	cfg, err := configFlags("run", args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.Log.Level, getenv)
	log.Info("fieldgate starting", "version", version, "config", cfg.Source, "env_overrides", cfg.Env)
	checkDescriptors(log, &cfg.Config)

	opts := cfg.storeOptions()
	opts.Logger = log.With("component", "store")
	commits := &commitFanout{}
	opts.OnCommit = commits.committed
	opts.BootID = clock.BootID()
	st, err := store.Open(opts)
	if err != nil {
		return err
	}
	clk := newClock(&cfg.Config, st, clocks, log.With("component", "clock"))
	var mq *broker.Broker
	var sink sensors.Sink = st
	creds := credentials.NewChecker() // one bcrypt at a time, for the broker and the API together
	if cfg.MQTT.Listen != "" || cfg.MQTT.TLSListen != "" || cfg.MQTT.WSListen != "" {
		o := broker.Options{Config: cfg.MQTT}
		o.Logger = log.With("component", "mqtt")
		o.Credentials = creds
		o.Stamp = clk.Stamp
		if mq, err = broker.New(st, o); err == nil {
			err = mq.Start()
		}
		var le *broker.ListenError
		if errors.As(err, &le) {
			err = listenHint(map[string]string{"tcp": "mqtt.listen", "tls": "mqtt.tls_listen", "ws": "mqtt.ws_listen"}[le.Listener], le.Addr, le.Err)
		}
		if err != nil {
			return errors.Join(err, st.Close())
		}
		sink = publishingSink{st: st, mq: mq}
		log.Info("mqtt broker listening", "tcp", mq.Addr("tcp"), "tls", mq.Addr("tls"), "ws", mq.Addr("ws"))
	}

	buses := sensors.NewBuses(sensors.OpenHostBus)
	entries := sensorEntries(cfg.Sensors, buses)
	poller := sensors.NewPoller(entries, sink, sensors.PollerOpts{Logger: log.With("component", "sensors"), Stamp: clk.Stamp})

	var sender *uplink.Sender
	var api *apiServer
	if cfg.Uplink.URL != "" {
		o := cfg.uplinkOptions()
		o.Logger = log.With("component", "uplink")
		o.Report = func() uplink.Report { return report(api, clk, st) } // api is set before the sender runs
		if sender, err = uplink.New(st, o); err != nil {
			return errors.Join(err, closeBroker(mq), st.Close())
		}
	} else {
		log.Info("no uplink configured: readings stay in the local store")
	}
	if cfg.API.Listen != "" {
		if api, err = startAPI(&cfg.Config, log.With("component", "api"), st, creds, mq, poller, sender, commits, clk); err != nil {
			return errors.Join(err, closeBroker(mq), st.Close())
		}
		log.Info("api listening", "url", api.url())
	}

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); clk.Run(runCtx, time.Second) }()
	go func() { defer wg.Done(); poller.Run(runCtx) }()
	go func() {
		defer wg.Done()
		logStatus(runCtx, log, st, poller, mq, sender, clk, cfg.Log.StatusInterval)
	}()
	if sender != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sender.Run(runCtx); err != nil {
				log.Error("uplink stopped", "err", err)
			}
		}()
	}

	stats := st.Stats()
	log.Info("fieldgate running", "gateway", st.GatewayID(), "store", st.Path(), "readings", stats.Readings, "sensors", len(entries))
	notify(log, fmt.Sprintf("READY=1\nSTATUS=running: %d readings stored, %d sensors", stats.Readings, len(entries)))
	if every, err := daemon.SdWatchdogEnabled(false); err == nil && every > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			watchdog(runCtx, log, every, healthCheck(st, mq, api), func() { notify(log, "WATCHDOG=1") })
		}()
		log.Info("systemd watchdog on", "interval", every)
	}
	if len(entries) == 0 {
		log.Warn("no sensors configured; list them under sensors: in the configuration")
	}

	var failed error
	select {
	case <-ctx.Done():
	case <-st.Failed():
		// Only a restart, and its replay of what is on disk, helps now:
		// exit non-zero so that systemd (Restart=always) starts it again.
		failed = fmt.Errorf("the store failed; exiting so that the restart recovers from what is on disk: %w", st.Stats().Failed)
		log.Error("fieldgate stopping", "err", failed)
	}
	stopSignals()
	notify(log, "STOPPING=1")
	log.Info("fieldgate stopping", "deadline", cfg.ShutdownTimeout)
	if err := api.close(5 * time.Second); err != nil {
		log.Warn("closing the api", "err", err)
	}
	cancel()
	wg.Wait()
	if err := buses.Close(); err != nil {
		log.Warn("closing I2C buses", "err", err)
	}
	if err := closeBroker(mq); err != nil {
		log.Warn("closing the mqtt broker", "err", err)
	}
	return errors.Join(failed, closeWithin(cfg.ShutdownTimeout, log, st))
}

// closeWithin closes the store, which commits what is queued, and gives up
// after timeout so that a wedged disk cannot hold the process forever.
func closeWithin(timeout time.Duration, log *slog.Logger, st *store.Store) error {
	done := make(chan error, 1)
	go func() { done <- st.Close() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("close store: %w", err)
		}
		log.Info("fieldgate stopped", "readings", st.Stats().Readings)
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("shutdown: the store did not close within %s", timeout)
	}
}

// sensorEntries builds the poller's entries from the configuration.
func sensorEntries(cfgs []sensors.Config, buses *sensors.Buses) []sensors.Entry {
	out := make([]sensors.Entry, 0, len(cfgs))
	for _, c := range cfgs {
		out = append(out, c.Entry(buses))
	}
	return out
}

// logStatus logs a one-line summary every interval: how the store is doing,
// without a line per reading.
func logStatus(ctx context.Context, log *slog.Logger, st *store.Store, poller *sensors.Poller, mq *broker.Broker, sender *uplink.Sender, clk *clock.Tracker, every time.Duration) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	prev := st.Stats()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := st.Stats()
		perMin := float64(s.Committed-prev.Committed) / every.Minutes()
		attrs := []any{"readings", s.Readings, "last_seq", s.LastSeq, "per_min", fmt.Sprintf("%.1f", perMin),
			"commits", s.Commits - prev.Commits, "used", store.FormatSize(s.UsedBytes), "file", store.FormatSize(s.FileBytes)}
		byState := map[sensors.State]int{}
		for _, h := range poller.Health() {
			byState[h.State]++
		}
		for _, state := range []sensors.State{sensors.StateOK, sensors.StateDegraded, sensors.StateFailing} {
			if byState[state] > 0 {
				attrs = append(attrs, "sensors_"+string(state), byState[state])
			}
		}
		if mq != nil {
			m := mq.Stats()
			attrs = append(attrs, "mqtt_clients", m.Clients, "mqtt_rejected", m.RejectedTotal())
		}
		if sender != nil {
			u := sender.Status()
			attrs = append(attrs, "uplink", u.State, "backlog", u.Backlog)
			if held := uplink.HoldWords(u.HeldForClock, clk.State().HoldLeft); held != "" {
				attrs = append(attrs, "held", held)
			}
		}
		if s.Err != nil {
			log.Error("status: commits failing", append(attrs, "since", s.FailingSince, "err", s.Err)...)
		} else {
			log.Info("status", attrs...)
		}
		notify(log, "STATUS="+statusLine(attrs))
		prev = s
	}
}

// publishingSink stores the gateway's sensor readings and also publishes
// them, retained, on fieldgate/gateway/{source}/{quantity} for local
// consumers.
type publishingSink struct {
	st *store.Store
	mq *broker.Broker
}

// Enqueue queues rs for the store, then publishes them.
func (p publishingSink) Enqueue(ctx context.Context, rs ...store.Reading) error {
	if err := p.st.Enqueue(ctx, rs...); err != nil {
		return err
	}
	for _, r := range rs {
		p.mq.PublishReading(r)
	}
	return nil
}

func closeBroker(mq *broker.Broker) error {
	if mq == nil {
		return nil
	}
	return mq.Close()
}

// statusLine turns the status attributes into systemd's one-line STATUS=.
func statusLine(attrs []any) string {
	var b strings.Builder
	for i := 0; i+1 < len(attrs); i += 2 {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%v=%v", attrs[i], attrs[i+1])
	}
	return b.String()
}

// checkDescriptors warns when the connection caps could take more file
// descriptors than the process may open: then a flood of sockets could
// leave none for the store's files or for devices.
func checkDescriptors(log *slog.Logger, cfg *Config) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	const reserve = 64 // the store's files, the log's segments, sensors, the uplink
	need := uint64(reserve)
	if cfg.MQTT.Listen != "" || cfg.MQTT.TLSListen != "" || cfg.MQTT.WSListen != "" {
		need += uint64(cfg.MQTT.Limits.MaxConnections + cfg.MQTT.Limits.MaxPending)
	}
	if cfg.API.Listen != "" {
		need += uint64(cfg.API.MaxConnections)
	}
	if need > lim.Cur {
		log.Warn("the connection caps exceed the file descriptor limit: raise LimitNOFILE or lower mqtt.max_connections and api.max_connections",
			"limit", lim.Cur, "needed", need)
	}
}

// report is what the uplink tells the cloud's fleet view of the gateway:
// what /status says, or, without the API, the clock and whether the store
// is healthy.
func report(api *apiServer, clk *clock.Tracker, st *store.Store) uplink.Report {
	if api != nil {
		s := api.api.Summary()
		return uplink.Report{Synced: s.Synced, Health: s.Health, Autonomy: s.Autonomy}
	}
	r := uplink.Report{Synced: clk.Synced(), Health: "ok"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := st.Ping(ctx); err != nil && (ctx.Err() != nil || store.Unhealthy(err)) {
		r.Health = "failing"
	}
	return r
}
