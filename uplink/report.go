package uplink

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"fieldgate/uplink/wire"
)

// Report is how the gateway is doing, for the status it PUTs to the
// receiver (see Options.Report).
type Report struct {
	// Synced says whether the system clock is synchronised.
	Synced bool
	// Health is "ok", "degraded" or "failing".
	Health string
	// Autonomy is how much longer the gateway can buffer without the cloud
	// before it drops readings (0: not known yet).
	Autonomy time.Duration
}

// reporter PUTs the gateway's status to the receiver, best effort: one at
// a time, only while the cloud answers batches, and not again once the
// receiver says it takes no status (a 404 or 405: a receiver written
// before the fleet view).
type reporter struct {
	busy, off atomic.Bool
	wg        sync.WaitGroup // the PUT in flight, waited for when Run ends
}

// maybeReport starts a status PUT if one is due and possible.
func (s *Sender) maybeReport(ctx context.Context) {
	if s.o.Report == nil || s.rep.off.Load() || !s.rep.busy.CompareAndSwap(false, true) {
		return
	}
	if st := s.state.status(s.st).State; st != "online" && st != "held" {
		s.rep.busy.Store(false)
		return
	}
	s.rep.wg.Go(func() {
		defer s.rep.busy.Store(false)
		s.report(ctx)
	})
}

// report PUTs one status.
func (s *Sender) report(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	r, st := s.o.Report(), s.Status()
	body := wire.StatusBody{Gateway: s.gw, Incarnation: s.inc, At: s.o.Now().UTC().Format(time.RFC3339Nano), Backlog: st.Backlog,
		Clock: "unsynced", Health: r.Health, AutonomySeconds: r.Autonomy.Round(time.Second).Seconds(), Version: s.o.Version}
	if r.Synced {
		body.Clock = "synced"
	}
	if !st.OldestUnsent.IsZero() && st.Backlog > 0 {
		body.OldestUnsent = st.OldestUnsent.UTC().Format(time.RFC3339Nano)
	}
	js, err := json.Marshal(body)
	if err != nil {
		return // a struct of strings and numbers always marshals
	}
	req, err := s.request(ctx, wire.StatusPath(s.gw), js)
	if err != nil {
		s.o.Logger.Debug("uplink: cannot report the gateway's status", "err", err)
		return
	}
	resp, err := s.o.Client.Do(req)
	if err != nil {
		s.o.Logger.Debug("uplink: cannot report the gateway's status", "err", err)
		return
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // let the connection be reused
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		s.rep.off.Store(true)
		s.o.Logger.Info("uplink: the receiver takes no gateway status (an older receiver); the fleet view stays empty", "status", resp.StatusCode)
	case resp.StatusCode >= 300:
		s.o.Logger.Debug("uplink: the receiver refused the gateway's status", "status", resp.StatusCode)
	}
}
