// Package sink is a reference receiver for fieldgate's uplink contract
// (docs/cloud-api.yaml): it accepts batch PUTs, deduplicates readings by id
// (gateway:seq), answers a replayed batch with the same result, refuses a
// batch whose key comes back with a different body (409), and can inject the
// faults a real network and backend produce.
//
// It is a development tool for tests and for trying fieldgate without a
// cloud, not a cloud backend: everything is kept in memory.
package sink

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"fieldgate/uplink/wire"
)

// Faults are injected per request; probabilities are from 0 to 1.
type Faults struct {
	// Down closes every connection at once, as a dead backend behind a proxy.
	Down bool
	// Unavailable answers 503 with a Retry-After of RetryAfter.
	Unavailable float64
	RetryAfter  time.Duration
	// Reset reads part of the body, then resets the connection.
	Reset float64
	// DropResponse stores the batch, then closes the connection without
	// answering: the sender cannot know the batch arrived.
	DropResponse float64
	// Delay answers after this long.
	Delay time.Duration
	// MaxReadings > 0 refuses larger batches with 413.
	MaxReadings int
	// Reject, when it returns true for a reading, refuses its batch with 422.
	Reject func(wire.ReadingBody) bool
}

// Stats counts what the sink saw.
type Stats struct {
	Requests  int `json:"requests"`
	Batches   int `json:"batches"`   // batches accepted (first time)
	Readings  int `json:"readings"`  // distinct readings stored
	Replays   int `json:"replays"`   // a batch sent again with the same body
	Duplicate int `json:"duplicate"` // readings received again (deduplicated)
	Conflicts int `json:"conflicts"` // same key or id with different content: must stay 0
	Refused   int `json:"refused"`   // 4xx/5xx answered, faults included
	BodyBytes int `json:"body_bytes"`
	RawBytes  int `json:"raw_bytes"`
}

// Sink is an http.Handler implementing the receiving side of the wire.
type Sink struct {
	// Token is the bearer token required; empty accepts any.
	Token string

	inj      *Injector
	mu       sync.Mutex
	faults   Faults
	batches  map[string][32]byte // idempotency key → body hash
	readings map[string]wire.ReadingBody
	received map[string]time.Time // reading id → when it first arrived
	statuses map[string]wire.StatusBody
	stats    Stats
}

// New returns an empty sink requiring token (empty: any).
func New(token string) *Sink {
	s := &Sink{Token: token, batches: map[string][32]byte{}, readings: map[string]wire.ReadingBody{}, received: map[string]time.Time{}, statuses: map[string]wire.StatusBody{}}
	s.inj = Inject(http.HandlerFunc(s.serve))
	return s
}

// SetFaults replaces the faults injected from now on.
func (s *Sink) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	s.inj.SetFaults(f)
}

// SetToken changes the token required from now on.
func (s *Sink) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Token = token
}

// Stats returns the counts so far.
func (s *Sink) Stats() Stats {
	injected, dropped := s.inj.Injected()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Requests += injected - dropped // the rest reached the sink
	st.Refused += injected
	return st
}

// Readings returns every reading stored, by id ("gateway:seq").
func (s *Sink) Readings() map[string]wire.ReadingBody {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.readings)
}

// Received returns when each reading first arrived, by id.
func (s *Sink) Received() map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.received)
}

var (
	batchPath  = regexp.MustCompile(`^/v1/gateways/([A-Za-z0-9._-]+)/batches/([0-9]+)-([0-9]+)$`)
	statusPath = regexp.MustCompile(`^/v1/gateways/([A-Za-z0-9._-]+)/status$`)
)

// status keeps a gateway's newest status PUT.
func (s *Sink) status(w http.ResponseWriter, r *http.Request, gw string) {
	var b wire.StatusBody
	if err := json.NewDecoder(io.LimitReader(r.Body, 4<<10)).Decode(&b); err != nil {
		s.refuse(w, http.StatusBadRequest, "status: "+err.Error())
		return
	}
	if msg := b.Check(gw); msg != "" {
		s.refuse(w, http.StatusBadRequest, msg)
		return
	}
	s.mu.Lock()
	if old, ok := s.statuses[gw]; !ok || parseTime(old.At).Before(parseTime(b.At)) {
		s.statuses[gw] = b
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func parseTime(v string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, v) // checked by StatusBody.Check
	return t
}

// Statuses returns the newest status of each gateway.
func (s *Sink) Statuses() map[string]wire.StatusBody {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.statuses)
}

// ServeHTTP handles one batch PUT, and GET /stats.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.inj.ServeHTTP(w, r) }

// serve is the sink behind its fault injector.
func (s *Sink) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/stats" {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Stats()) // a failed write is the client's problem
		return
	}
	s.mu.Lock()
	s.stats.Requests++
	f, token := s.faults, s.Token
	s.mu.Unlock()

	if m := statusPath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodPut && (token == "" || r.Header.Get("Authorization") == "Bearer "+token) {
		s.status(w, r, m[1])
		return
	}
	m := batchPath.FindStringSubmatch(r.URL.Path)
	switch {
	case m == nil:
		s.refuse(w, http.StatusNotFound, "no such resource: PUT /v1/gateways/{gateway}/batches/{first}-{last}")
		return
	case r.Method != http.MethodPut:
		w.Header().Set("Allow", http.MethodPut)
		s.refuse(w, http.StatusMethodNotAllowed, "use PUT")
		return
	case token != "" && r.Header.Get("Authorization") != "Bearer "+token:
		s.refuse(w, http.StatusUnauthorized, "bad or missing bearer token")
		return
	}
	gw := m[1]
	first, _ := strconv.ParseUint(m[2], 10, 64)
	last, _ := strconv.ParseUint(m[3], 10, 64)
	raw, _, body, err := wire.DecodeRequest(r, wire.Limits{Body: 64 << 20, JSON: 256 << 20})
	if err != nil {
		s.refuse(w, err.(*wire.DecodeError).Status, err.Error())
		return
	}
	if msg := body.Check(gw, first, last, r.Header.Get("Idempotency-Key")); msg != "" {
		s.refuse(w, http.StatusBadRequest, msg)
		return
	}
	if f.MaxReadings > 0 && len(body.Readings) > f.MaxReadings {
		s.refuse(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("at most %d readings per batch", f.MaxReadings))
		return
	}
	if f.Reject != nil {
		for _, rd := range body.Readings {
			if f.Reject(rd) {
				s.refuse(w, http.StatusUnprocessableEntity, fmt.Sprintf("reading %d: rejected", rd.Seq))
				return
			}
		}
	}
	if conflict := s.store(gw, first, last, raw, body); conflict {
		s.refuse(w, http.StatusConflict, "this batch, or a reading in it, was received before with different content")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"accepted":%d}`+"\n", len(body.Readings))
}

// store records the batch and its readings, as the contract says a
// receiver must: a batch key seen before with the same body is a replay; a
// key, or a reading's identity (gateway, incarnation, seq), seen before
// with different content is a conflict, and then nothing of the batch is
// stored.
func (s *Sink) store(gw string, first, last uint64, raw []byte, b wire.BatchBody) (conflict bool) {
	key := wire.IdempotencyKey(gw, b.Incarnation, first, last)
	sum := sha256.Sum256(raw)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.BodyBytes += len(raw)
	if prev, seen := s.batches[key]; seen {
		if prev != sum {
			s.stats.Conflicts++
			return true
		}
		s.stats.Replays++
		return false
	}
	for _, rd := range b.Readings {
		if old, ok := s.readings[wire.ReadingID(gw, b.Incarnation, rd.Seq)]; ok && old != rd {
			s.stats.Conflicts++
			return true
		}
	}
	s.batches[key] = sum
	s.stats.Batches++
	for _, rd := range b.Readings {
		id := wire.ReadingID(gw, b.Incarnation, rd.Seq)
		if _, ok := s.readings[id]; ok {
			s.stats.Duplicate++
			continue
		}
		s.readings[id] = rd
		s.received[id] = now
		s.stats.Readings++
	}
	js, _ := json.Marshal(b) // re-encoding a decoded body cannot fail
	s.stats.RawBytes += len(js)
	return false
}

func (s *Sink) refuse(w http.ResponseWriter, status int, msg string) {
	s.mu.Lock()
	s.stats.Refused++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(wire.ErrorBody(status, msg)) // a failed write is the client's problem
}
