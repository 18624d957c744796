package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"fieldgate/uplink/wire"
)

// Options tune a Server; zero fields take the defaults.
type Options struct {
	// MaxReadings is the most readings in one batch (413 above). Default 10,000.
	MaxReadings int
	// MaxBody is the largest compressed body accepted (413 above; the
	// gateway splits the batch). Default, and at most, what a batch of
	// MaxReadings can decompress to: no valid body is larger.
	MaxBody int64
	// Timeout bounds a batch's time in the database, from when its body
	// was read; past it the answer is 503. A commit that began finishes
	// even if the gateway hangs up. Default 20 s: keep it clearly below
	// the gateway's uplink.timeout (30 s), and DBOptions.StatementTimeout
	// below it.
	Timeout time.Duration
	// MaxInFlight is how many batches are handled at once; beyond it a
	// request waits for its turn, before its body is read. Default: the
	// database pool's size, so neither authentication nor a crowd of slow
	// uploads can take every connection.
	MaxInFlight int
	// MaxQueued is how many requests may wait for their turn; beyond it a
	// request is answered 503 at once. Default 16 × MaxInFlight.
	MaxQueued int
	// QueueWait is the longest a request waits for its turn before it is
	// answered 503. Default 2 s: keep QueueWait + Timeout below the
	// gateways' uplink.timeout.
	QueueWait time.Duration
	// RetryAfter is sent with every 503. Default 5 s.
	RetryAfter time.Duration
	// SeparateOps serves /healthz, /readyz and /metrics only on Ops(),
	// for a listener of their own, not beside the batches.
	SeparateOps bool
	// Logger receives refusals (rate-limited) and database errors.
	Logger *slog.Logger
}

// Server is the receiver's HTTP handler: batch PUTs, /healthz, /readyz and
// /metrics.
type Server struct {
	db  *DB
	opt Options
	m   *metrics
	mux *http.ServeMux
	ops *http.ServeMux
	adm *admission
	// warn rate-limits the log lines of refusals and database errors.
	warn rate.Sometimes
}

// NewServer returns the handler storing into db.
func NewServer(db *DB, opt Options) *Server {
	if opt.MaxReadings <= 0 {
		opt.MaxReadings = 10_000
	}
	if most := MaxBody(opt.MaxReadings); opt.MaxBody <= 0 || opt.MaxBody > most {
		opt.MaxBody = most
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 20 * time.Second
	}
	if opt.MaxInFlight <= 0 {
		opt.MaxInFlight = db.MaxConns()
	}
	if opt.MaxQueued <= 0 {
		opt.MaxQueued = 16 * opt.MaxInFlight
	}
	if opt.QueueWait <= 0 {
		opt.QueueWait = 2 * time.Second
	}
	if opt.RetryAfter <= 0 {
		opt.RetryAfter = 5 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	m := newMetrics()
	s := &Server{db: db, opt: opt, m: m, mux: http.NewServeMux(), ops: http.NewServeMux(),
		adm: newAdmission(opt.MaxInFlight, opt.MaxQueued, opt.QueueWait, m.queued), warn: rate.Sometimes{First: 10, Interval: time.Second}}
	s.mux.HandleFunc("/v1/gateways/{gateway}/batches/{bounds}", s.putBatch)
	s.mux.HandleFunc("/v1/gateways/{gateway}/status", s.putStatus)
	s.ops.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.ops.HandleFunc("GET /readyz", s.ready)
	s.m.reg.MustRegister(fleetCollector{db})
	s.ops.Handle("GET /metrics", promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{}))
	if !opt.SeparateOps {
		s.mux.Handle("GET /healthz", s.ops)
		s.mux.Handle("GET /readyz", s.ops)
		s.mux.Handle("GET /metrics", s.ops)
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.refuse(w, r, http.StatusNotFound, "no such resource: PUT /v1/gateways/{gateway}/batches/{first}-{last}")
	})
	return s
}

// Ops serves /healthz, /readyz and /metrics.
func (s *Server) Ops() http.Handler { return s.ops }

// ServeHTTP serves one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Registry holds the server's metrics, for adding more (the process's).
func (s *Server) Registry() *prometheus.Registry { return s.m.reg }

// ready answers 200 when the database answers within 2 s and takes
// writes. The answer names no host, user or database: the cause goes to
// the log.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	switch err := s.db.Ready(ctx); {
	case errors.Is(err, ErrReadOnly):
		s.warn.Do(func() { s.opt.Logger.Warn("not ready: the database is read-only; the pool was reset", "err", err) })
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database read-only"})
	case err != nil:
		s.warn.Do(func() { s.opt.Logger.Warn("not ready: the database does not answer", "err", err) })
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unreachable"})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

func (s *Server) putBatch(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.m.inFlight.Inc()
	defer s.m.inFlight.Dec()
	if r.Method != http.MethodPut {
		w.Header().Set("Allow", http.MethodPut)
		s.refuse(w, r, http.StatusMethodNotAllowed, "use PUT")
		return
	}
	gw := r.PathValue("gateway")
	first, last, ok := parseBounds(r.PathValue("bounds"))
	if !ok || !gatewayID.MatchString(gw) {
		s.refuse(w, r, http.StatusNotFound, "no such resource: PUT /v1/gateways/{gateway}/batches/{first}-{last}")
		return
	}
	if !s.adm.enter(r) {
		s.busy(w, r)
		return
	}
	defer s.adm.release()
	if !s.authenticate(w, r, gw) {
		return
	}
	_, js, body, err := wire.DecodeRequest(r, wire.Limits{Body: s.opt.MaxBody, JSON: maxJSONPerReading * int64(s.opt.MaxReadings)})
	if err != nil {
		s.refuse(w, r, err.(*wire.DecodeError).Status, err.Error())
		return
	}
	if msg := body.Check(gw, first, last, r.Header.Get("Idempotency-Key")); msg != "" {
		s.refuse(w, r, http.StatusBadRequest, msg)
		return
	}
	if len(body.Readings) > s.opt.MaxReadings {
		s.refuse(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("at most %d readings per batch: split it", s.opt.MaxReadings))
		return
	}
	// From here the batch's time runs, and the gateway's going away does
	// not cancel a commit that began (the statement timeout ends it on
	// the server if it hangs).
	ctx, cancelStore := context.WithTimeout(context.WithoutCancel(r.Context()), s.opt.Timeout)
	defer cancelStore()
	res, err := s.db.StoreBatch(ctx, body, js)
	var invalid *InvalidError
	switch {
	case errors.As(err, &invalid) || isDataError(err):
		s.refuse(w, r, http.StatusUnprocessableEntity, err.Error())
		return
	case err != nil:
		s.unavailable(w, r, err)
		return
	case res.Outcome == Conflict:
		s.m.batches.WithLabelValues("conflict").Inc()
		s.refuse(w, r, http.StatusConflict, "this batch's bounds, or a reading's identity (gateway, incarnation, seq), were stored before with other content; what was stored first is kept")
		return
	case res.Outcome == Replay:
		s.m.batches.WithLabelValues("replay").Inc()
	default:
		s.m.batches.WithLabelValues("stored").Inc()
		s.m.readings.Add(float64(res.New))
		s.m.duplicates.Add(float64(len(body.Readings) - res.New))
		s.m.latency.Observe(time.Since(start).Seconds())
	}
	writeJSON(w, http.StatusOK, map[string]int{"accepted": len(body.Readings)})
	s.m.requests.WithLabelValues("200").Inc()
}

// MaxBody is the most a valid batch of maxReadings readings can take, in
// JSON and so compressed too: Options.MaxBody's default and bound.
func MaxBody(maxReadings int) int64 { return maxJSONPerReading * int64(maxReadings) }

// authenticate checks the request's bearer token is gateway gw's, and
// answers it if not.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, gw string) bool {
	token, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !found || token == "" {
		s.refuse(w, r, http.StatusUnauthorized, "missing bearer token")
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), min(s.opt.Timeout, authTimeout))
	defer cancel()
	switch err := s.db.Authenticate(ctx, gw, token); {
	case errors.Is(err, ErrBadToken):
		s.refuse(w, r, http.StatusUnauthorized, "unknown token")
	case errors.Is(err, ErrOtherGateway):
		s.refuse(w, r, http.StatusForbidden, "this token is another gateway's")
	case err != nil:
		s.unavailable(w, r, err)
	default:
		return true
	}
	return false
}

// putStatus keeps a gateway's reported status (best effort on both sides:
// it is for the fleet view, not part of any batch): 204.
func (s *Server) putStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		w.Header().Set("Allow", http.MethodPut)
		s.refuse(w, r, http.StatusMethodNotAllowed, "use PUT")
		return
	}
	gw := r.PathValue("gateway")
	if !gatewayID.MatchString(gw) {
		s.refuse(w, r, http.StatusNotFound, "no such resource: PUT /v1/gateways/{gateway}/status")
		return
	}
	if !s.adm.enter(r) {
		s.busy(w, r)
		return
	}
	defer s.adm.release()
	if !s.authenticate(w, r, gw) {
		return
	}
	var b wire.StatusBody
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxStatusBody)).Decode(&b); err != nil { // newer gateways may say more: ignored
		s.refuse(w, r, http.StatusBadRequest, "status: "+err.Error())
		return
	}
	if msg := b.Check(gw); msg != "" {
		s.refuse(w, r, http.StatusBadRequest, msg)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.opt.Timeout)
	defer cancel()
	if err := s.db.StoreStatus(ctx, b); err != nil {
		s.unavailable(w, r, err)
		return
	}
	s.m.requests.WithLabelValues("204").Inc()
	w.WriteHeader(http.StatusNoContent)
}

// maxStatusBody bounds a status body: a few hundred bytes are enough.
const maxStatusBody = 4 << 10

// maxJSONPerReading bounds the JSON a batch may decompress to, per reading
// it may hold: a reading's text is at most 3 × 256 bytes, and its numbers,
// time and keys take under 200. A body that inflates past it (a gzip bomb)
// is refused before it is decoded.
const maxJSONPerReading = 1 << 10

// parseBounds parses "{first}-{last}".
func parseBounds(s string) (first, last uint64, ok bool) {
	a, b, found := strings.Cut(s, "-")
	first, err1 := strconv.ParseUint(a, 10, 64)
	last, err2 := strconv.ParseUint(b, 10, 64)
	return first, last, found && err1 == nil && err2 == nil && first >= 1 && first <= last
}

// isDataError reports whether PostgreSQL refused the values themselves
// (class 22, data exception), which no retry fixes.
func isDataError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && strings.HasPrefix(pe.Code, "22")
}

// authTimeout bounds authentication's time in the database.
const authTimeout = 5 * time.Second

// unavailable answers 503 with Retry-After: the database failed or took
// too long, and nothing was acknowledged. A connection that leads nowhere
// useful (a demoted primary, a server that shut down) resets the pool.
func (s *Server) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	s.m.dbErrors.Inc()
	s.db.ResetIfStale(err)
	s.retryLater(w)
	s.refuse(w, r, http.StatusServiceUnavailable, "database unavailable, retry later")
	s.warn.Do(func() { s.opt.Logger.Warn("database error", "path", r.URL.Path, "err", err) })
}

// busy answers 503 with Retry-After: MaxInFlight batches are being
// handled, and MaxQueued wait already or the request waited QueueWait.
func (s *Server) busy(w http.ResponseWriter, r *http.Request) {
	s.m.busy.Inc()
	s.retryLater(w)
	s.refuse(w, r, http.StatusServiceUnavailable, "busy, retry later")
}

func (s *Server) retryLater(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(int(s.opt.RetryAfter.Round(time.Second).Seconds())))
}

// refuse answers status with the contract's error shape, counts it and
// logs it: rate-limited, or every one when the logger takes debug.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.m.requests.WithLabelValues(strconv.Itoa(status)).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(wire.ErrorBody(status, msg)) // a failed write is the client's problem
	if status == http.StatusServiceUnavailable {
		return // unavailable logged the cause
	}
	args := []any{"status", status, "path", r.URL.Path, "from", r.RemoteAddr, "reason", msg}
	if s.opt.Logger.Enabled(r.Context(), slog.LevelDebug) {
		s.opt.Logger.Debug("refused", args...)
		return
	}
	s.warn.Do(func() { s.opt.Logger.Info("refused", args...) })
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // a failed write is the client's problem
}
