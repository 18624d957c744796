package sink

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Injector wraps any receiver and injects the transport faults of Faults
// (Down, Unavailable, Reset, DropResponse, Delay) into its batch PUTs; the
// content faults (MaxReadings, Reject) are the Sink's own. Wrapped around
// a real receiver it lets a test drop responses after the commit.
type Injector struct {
	next     http.Handler
	mu       sync.Mutex
	faults   Faults
	rng      *rand.Rand
	injected int // requests failed
	dropped  int // of which the receiver had answered
}

// Inject returns next with faults injected (none until SetFaults).
func Inject(next http.Handler) *Injector {
	return &Injector{next: next, rng: rand.New(rand.NewPCG(1, 2))}
}

// SetFaults replaces the faults injected from now on.
func (in *Injector) SetFaults(f Faults) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.faults = f
}

// Injected counts the requests a fault answered or cut, and of those the
// ones whose answer from the receiver was dropped.
func (in *Injector) Injected() (injected, dropped int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.injected, in.dropped
}

// roll reports whether a fault of probability p happens, counting it.
func (in *Injector) roll(p float64) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	hit := p > 0 && in.rng.Float64() < p
	if hit {
		in.injected++
	}
	return hit
}

// ServeHTTP passes r to the receiver, or fails it as the faults say.
func (in *Injector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	in.mu.Lock()
	f := in.faults
	in.mu.Unlock()
	if r.Method != http.MethodPut {
		in.next.ServeHTTP(w, r)
		return
	}
	switch {
	case f.Down && in.roll(1):
		hangUp(w, false)
		return
	case in.roll(f.Unavailable):
		w.Header().Set("Retry-After", strconv.Itoa(int(f.RetryAfter.Seconds())))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	case in.roll(f.Reset):
		_, _ = io.CopyN(io.Discard, r.Body, 100) // part of the body, then cut
		hangUp(w, true)
		return
	case f.DropResponse == 0 && f.Delay == 0:
		in.next.ServeHTTP(w, r)
		return
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	in.next.ServeHTTP(rec, r)
	if rec.status/100 == 2 && in.roll(f.DropResponse) {
		in.mu.Lock()
		in.dropped++
		in.mu.Unlock()
		hangUp(w, false) // stored, and the sender never hears of it
		return
	}
	time.Sleep(f.Delay)
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body.Bytes()) // a failed write is the client's problem
}

// recorder keeps a receiver's answer until the injector decides its fate.
type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

// Header is the answer's header, kept.
func (r *recorder) Header() http.Header { return r.header }

// WriteHeader keeps the first status.
func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
}

// Write keeps the body.
func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}

// hangUp closes the connection without a response; reset sends a TCP RST.
func hangUp(w http.ResponseWriter, reset bool) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // HTTP/2: abort the stream instead
	}
	if tc, ok := conn.(*net.TCPConn); ok && reset {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close() // the point is to drop it
}
