package httpapi

import (
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// negotiate answers 406 when the client accepts none of the route's media
// types (JSON unless the route says otherwise with produces) and 415 when a
// request with a body does not declare JSON.
func (s *Server) negotiate(produces map[string][]string) gin.HandlerFunc {
	return func(c *gin.Context) {
		offers, ok := produces[c.FullPath()]
		if !ok {
			offers = []string{"application/json"}
		}
		if !acceptsAny(c.GetHeader("Accept"), offers) {
			s.fail(c, errorf(http.StatusNotAcceptable, "this resource is available as %s; the Accept header allows none of them", strings.Join(offers, ", ")))
			return
		}
		switch c.Request.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			if hasBody(c.Request) && !isJSON(c.GetHeader("Content-Type")) {
				s.fail(c, errorf(http.StatusUnsupportedMediaType, "request bodies must be JSON (Content-Type: application/json), not %q", c.GetHeader("Content-Type")))
				return
			}
		}
		c.Next()
	}
}

func hasBody(r *http.Request) bool {
	return r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
}

// acceptsAny reports whether an Accept header allows one of offers. A
// missing header accepts anything.
func acceptsAny(header string, offers []string) bool {
	if strings.TrimSpace(header) == "" {
		return true
	}
	for _, part := range strings.Split(header, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if q, err := strconv.ParseFloat(params["q"], 64); err == nil && q <= 0 {
			continue
		}
		for _, o := range offers {
			typ, _, _ := strings.Cut(o, "/")
			if mt == "*/*" || mt == o || mt == typ+"/*" {
				return true
			}
		}
	}
	return false
}

// limitBody caps request bodies: a declared length over the cap is refused
// at once with 413, a chunked body is cut off at the cap (decode reports it).
func (s *Server) limitBody(c *gin.Context) {
	if c.Request.ContentLength > s.opts.MaxBodySize {
		s.fail(c, errorf(http.StatusRequestEntityTooLarge, "request body of %d bytes is larger than the limit of %d", c.Request.ContentLength, s.opts.MaxBodySize))
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.opts.MaxBodySize)
	c.Next()
}

// rateLimit answers 429 with Retry-After once a client (by ClientIP, which
// believes X-Forwarded-For only from trusted proxies) exceeds its budget.
func (s *Server) rateLimit(c *gin.Context) {
	if internal(c.Request) {
		c.Next()
		return
	}
	if wait := s.limiter.take(c.ClientIP()); wait > 0 {
		c.Header("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		s.metrics.limited.Inc()
		s.fail(c, errorf(http.StatusTooManyRequests, "too many requests; retry in %s", wait.Round(time.Millisecond)))
		return
	}
	c.Next()
}

// limiter holds one token bucket per client address.
type limiter struct {
	mu      sync.Mutex
	every   rate.Limit
	burst   int
	now     func() time.Time
	clients map[string]*client
	swept   time.Time
}

type client struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiter(perSecond float64, burst int, now func() time.Time) *limiter {
	return &limiter{every: rate.Limit(perSecond), burst: burst, now: now, clients: map[string]*client{}}
}

// take spends one token of addr's bucket; if there is none it returns how
// long until there will be.
func (l *limiter) take(addr string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.swept) > time.Minute {
		for a, c := range l.clients { // forget clients idle long enough to have a full bucket
			if now.Sub(c.seen) > time.Minute {
				delete(l.clients, a)
			}
		}
		l.swept = now
	}
	c, ok := l.clients[addr]
	if !ok {
		c = &client{lim: rate.NewLimiter(l.every, l.burst)}
		l.clients[addr] = c
	}
	c.seen = now
	r := c.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// loggedKey marks a request whose handler logged its refusal already.
const loggedKey = "fieldgate.logged"

// logRequests counts every request in /metrics by method and status and
// logs 5xx at error, refusals that may be an attack (401, 403, 429) at
// warn — rate-limited per client address by the daemon's logger — and the
// rest, other 4xx included, at debug: a hammering client must not turn
// into SD-card writes.
func (s *Server) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	status := c.Writer.Status()
	s.metrics.requests.WithLabelValues(c.Request.Method, strconv.Itoa(status)).Inc()
	attrs := []any{"method", c.Request.Method, "path", c.Request.URL.Path, "status", status,
		"took", time.Since(start).Round(time.Microsecond), "addr", c.ClientIP()}
	_, logged := c.Get(loggedKey)
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests:
		if !logged {
			s.log.Warn("api request refused", attrs...)
		}
	default:
		if status >= 500 {
			if len(c.Errors) > 0 {
				attrs = append(attrs, "err", c.Errors.String())
			}
			s.log.Error("api request failed", attrs...)
		} else {
			s.log.Debug("api request", attrs...)
		}
	}
}

// recovery turns a handler panic into a logged 500 with the usual error
// body; the process keeps serving.
func (s *Server) recovery(c *gin.Context) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("api handler panicked", "path", c.Request.URL.Path, "panic", p)
			s.fail(c, errorf(http.StatusInternalServerError, "internal error; see the gateway's log"))
		}
	}()
	c.Next()
}
