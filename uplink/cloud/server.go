package cloud

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
	// MaxBody is the largest compressed body accepted (413 above; the
	// gateway splits the batch). Default 16 MiB.
	MaxBody int64
	// MaxReadings is the most readings in one batch (413 above). Default 10,000.
	MaxReadings int
	// Timeout bounds a batch's time in the database; past it the answer is
	// 503. Default 30 s.
	Timeout time.Duration
	// RetryAfter is sent with every 503. Default 5 s.
	RetryAfter time.Duration
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
	// warn rate-limits the log lines of refusals and database errors.
	warn rate.Sometimes
}

// NewServer returns the handler storing into db.
func NewServer(db *DB, opt Options) *Server {
	if opt.MaxBody <= 0 {
		opt.MaxBody = 16 << 20
	}
	if opt.MaxReadings <= 0 {
		opt.MaxReadings = 10_000
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 30 * time.Second
	}
	if opt.RetryAfter <= 0 {
		opt.RetryAfter = 5 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{db: db, opt: opt, m: newMetrics(), mux: http.NewServeMux(), warn: rate.Sometimes{First: 10, Interval: time.Second}}
	s.mux.HandleFunc("/v1/gateways/{gateway}/batches/{bounds}", s.putBatch)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.refuse(w, r, http.StatusNotFound, "no such resource: PUT /v1/gateways/{gateway}/batches/{first}-{last}")
	})
	return s
}

// ServeHTTP serves one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Registry holds the server's metrics, for adding more (the process's).
func (s *Server) Registry() *prometheus.Registry { return s.m.reg }

// ready answers 200 when the database answers within 2 s.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.db.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unreachable", "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
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
	ctx, cancel := context.WithTimeout(r.Context(), s.opt.Timeout)
	defer cancel()
	token, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !found || token == "" {
		s.refuse(w, r, http.StatusUnauthorized, "missing bearer token")
		return
	}
	switch err := s.db.Authenticate(ctx, gw, token); {
	case errors.Is(err, ErrBadToken):
		s.refuse(w, r, http.StatusUnauthorized, "unknown token")
		return
	case errors.Is(err, ErrOtherGateway):
		s.refuse(w, r, http.StatusForbidden, "this token is another gateway's")
		return
	case err != nil:
		s.unavailable(w, r, err)
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

// unavailable answers 503 with Retry-After: the database failed or took
// too long, and nothing was acknowledged.
func (s *Server) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	s.m.dbErrors.Inc()
	w.Header().Set("Retry-After", strconv.Itoa(int(s.opt.RetryAfter.Round(time.Second).Seconds())))
	s.refuse(w, r, http.StatusServiceUnavailable, "database unavailable, retry later")
	s.warn.Do(func() { s.opt.Logger.Warn("database error", "path", r.URL.Path, "err", err) })
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
