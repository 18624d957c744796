package uplink

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fieldgate/store"
	"fieldgate/uplink/sink"
	"fieldgate/uplink/wire"
)

func TestDrainDeliversEveryReadingOnce(t *testing.T) {
	st := testStore(t, 2000)
	sk, srv := cloud(t, "secret")
	s := running(t, st, fastOptions(srv.URL))
	drained(t, st, 20*time.Second)
	exactlyOnce(t, st, sk)
	stats := sk.Stats()
	if stats.Batches < 20 || stats.Replays != 0 {
		t.Errorf("sink stats %+v: want at least 20 batches of ≤100 and no replays", stats)
	}
	waitStatus(t, s, func(x Status) bool { return x.State == "online" && x.Backlog == 0 && x.Sent == 2000 })
}

func TestRequestFollowsTheContract(t *testing.T) {
	st := testStore(t, 3)
	var mu sync.Mutex
	var req *http.Request
	var body wire.BatchBody
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zr, err := gzip.NewReader(r.Body)
		if err == nil {
			err = json.NewDecoder(zr).Decode(&body)
		}
		if err != nil {
			t.Errorf("body: %v", err)
		}
		mu.Lock()
		req = r
		mu.Unlock()
	}))
	defer srv.Close()
	o := fastOptions(srv.URL + "/ingest/")
	o.Version = "1.2.3"
	running(t, st, o)
	drained(t, st, 10*time.Second)
	mu.Lock()
	defer mu.Unlock()
	for k, want := range map[string]string{
		"Authorization":    "Bearer secret",
		"Idempotency-Key":  wire.IdempotencyKey("fg-test", st.Incarnation(), 1, 3),
		"Content-Type":     "application/json",
		"Content-Encoding": "gzip",
		"User-Agent":       "fieldgate/1.2.3 (gateway fg-test)",
	} {
		if got := req.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if req.Method != http.MethodPut || req.URL.Path != "/ingest/v1/gateways/fg-test/batches/1-3" {
		t.Errorf("%s %s", req.Method, req.URL.Path)
	}
	if body.Gateway != "fg-test" || body.FirstSeq != 1 || body.LastSeq != 3 || len(body.Readings) != 3 ||
		body.Readings[1] != (wire.ReadingBody{Seq: 2, Source: "esp32-a", Quantity: "temperature", Value: 1, Unit: "Cel", Time: "2026-07-01T12:00:01Z", Clock: "synced"}) {
		t.Errorf("body %+v", body)
	}
}

func TestServerDownThenUpWithoutARetryStorm(t *testing.T) {
	st := testStore(t, 500)
	sk, srv := cloud(t, "secret")
	sk.SetFaults(sink.Faults{Down: true})
	o := fastOptions(srv.URL)
	o.BackoffBase, o.BackoffMax = 50*time.Millisecond, 100*time.Millisecond
	began := time.Now()
	s := running(t, st, o)
	waitFor(t, 10*time.Second, func() bool { return sk.Stats().Requests >= 20 })
	// One probe at a time, at least ~25 ms apart on average (full jitter of
	// up to 50–100 ms): far from a storm of InFlight × retries. A loaded
	// machine only makes the rate lower.
	during := sk.Stats().Requests
	if rate := float64(during) / time.Since(began).Seconds(); rate > 60 {
		t.Errorf("%d requests in %s of outage: %.0f/s", during, time.Since(began), rate)
	}
	if x := s.Status(); x.State != "offline" || x.OfflineSince.IsZero() || x.Backlog != 500 || x.LastError == "" {
		t.Errorf("status during the outage: %+v", x)
	}
	sk.SetFaults(sink.Faults{})
	drained(t, st, 20*time.Second)
	exactlyOnce(t, st, sk)
	t.Logf("%d requests during the outage", during)
}

func TestRetryAfterIsHonoured(t *testing.T) {
	st := testStore(t, 10)
	var mu sync.Mutex
	var times []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		n := len(times)
		mu.Unlock()
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	running(t, st, fastOptions(srv.URL))
	drained(t, st, 10*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if gap := times[1].Sub(times[0]); gap < time.Second {
		t.Errorf("retried %v after a 503 with Retry-After: 1", gap)
	}
}

func TestResetAndDroppedResponsesAreResentIdentically(t *testing.T) {
	st := testStore(t, 3000)
	sk, srv := cloud(t, "secret")
	sk.SetFaults(sink.Faults{Reset: 0.2, DropResponse: 0.3})
	running(t, st, fastOptions(srv.URL))
	drained(t, st, 30*time.Second)
	exactlyOnce(t, st, sk)
	stats := sk.Stats()
	if stats.Replays == 0 {
		t.Errorf("no batch was resent after a dropped response: %+v", stats)
	}
	t.Logf("sink: %+v", stats)
}

func TestUnauthorizedPausesUntilTheTokenIsFixed(t *testing.T) {
	st := testStore(t, 300)
	sk, srv := cloud(t, "good")
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeFile(t, tokenFile, "bad\n")
	o := fastOptions(srv.URL)
	o.Token, o.TokenFile = "", tokenFile
	s := running(t, st, o)
	waitStatus(t, s, func(x Status) bool { return x.State == "unauthorized" && strings.Contains(x.LastError, "401") })
	time.Sleep(300 * time.Millisecond)
	if n := sk.Stats().Requests; n > 10 {
		t.Errorf("%d requests in 300 ms while unauthorized: should probe gently", n)
	}
	if len(sk.Readings()) != 0 {
		t.Fatal("readings accepted with a bad token")
	}
	writeFile(t, tokenFile, "good\n")
	drained(t, st, 10*time.Second)
	exactlyOnce(t, st, sk)
}

func TestRefusedBatchGoesToDeadLettersAndSendingContinues(t *testing.T) {
	st := testStore(t, 1000)
	sk, srv := cloud(t, "secret")
	var poisoned atomic.Bool
	poisoned.Store(true)
	sk.SetFaults(sink.Faults{Reject: func(r wire.ReadingBody) bool { return poisoned.Load() && r.Seq == 250 }})
	s := running(t, st, fastOptions(srv.URL))
	drained(t, st, 20*time.Second) // the cursor passes the dead letter
	ob, err := st.Outbox()
	if err != nil {
		t.Fatal(err)
	}
	if len(ob.DeadLetters) != 1 || ob.DeadLetters[0].First > 250 || ob.DeadLetters[0].Last < 250 || ob.DeadLetters[0].Status != 422 ||
		!strings.Contains(ob.DeadLetters[0].Reason, "reading 250") {
		t.Fatalf("dead letters %+v", ob.DeadLetters)
	}
	dl := ob.DeadLetters[0]
	if got := len(sk.Readings()); got != 1000-int(dl.Last-dl.First+1) {
		t.Errorf("cloud holds %d readings: every batch but the dead letter must flow", got)
	}
	// Fixed on the cloud side: retrying the dead letter delivers it.
	poisoned.Store(false)
	if err := s.RetryDeadLetter(context.Background(), dl.First); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { ob, _ := st.Outbox(); return len(ob.DeadLetters) == 0 })
	exactlyOnce(t, st, sk)
	if err := s.RetryDeadLetter(context.Background(), 12345); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("retry of an unknown dead letter: %v", err)
	}
}

// TestDeadLetterRetriesAreSentOnce asks for the same retries again while
// they are in flight: each dead letter goes out once per retry, and a
// refused retry stays a dead letter without another try.
func TestDeadLetterRetriesAreSentOnce(t *testing.T) {
	st := testStore(t, 1000)
	sk := sink.New("secret")
	var poisoned, hold atomic.Bool
	poisoned.Store(true)
	sk.SetFaults(sink.Faults{Reject: func(r wire.ReadingBody) bool { return poisoned.Load() && r.Seq%300 == 150 }})
	gate, held := make(chan struct{}), make(chan string, 16)
	var mu sync.Mutex
	sent := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sent[r.URL.Path]++
		mu.Unlock()
		if hold.Load() {
			held <- r.URL.Path
			<-gate
		}
		sk.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s := running(t, st, fastOptions(srv.URL))
	drained(t, st, 20*time.Second)
	ob, err := st.Outbox()
	if err != nil {
		t.Fatal(err)
	}
	if len(ob.DeadLetters) != 3 {
		t.Fatalf("dead letters %+v, want 3 (seqs 150, 450, 750)", ob.DeadLetters)
	}
	refused := sk.Stats().Refused

	hold.Store(true)
	ctx := context.Background()
	if n, err := s.RetryDeadLetters(ctx); n != 3 || err != nil || s.Status().Retrying != 3 {
		t.Fatalf("RetryDeadLetters queued %d (%v), want 3; status %+v", n, err, s.Status())
	}
	for range 3 { // all three in flight (three slots)
		<-held
	}
	if n, err := s.RetryDeadLetters(ctx); n != 0 || err != nil {
		t.Errorf("retry while in flight queued %d (%v), want 0", n, err)
	}
	if err := s.RetryDeadLetter(ctx, ob.DeadLetters[1].First); err != nil {
		t.Errorf("retry of one in flight: %v", err)
	}
	hold.Store(false)
	close(gate)
	waitFor(t, 10*time.Second, func() bool { return s.Status().Retrying == 0 }) // answered and handled
	if got := sk.Stats().Refused; got != refused+3 {
		t.Fatalf("the cloud refused %d retries, want 3", got-refused)
	}
	// Refused again, they stay dead letters and are not retried: the next
	// retry queues all three anew, and once the cloud is fixed it
	// delivers them.
	poisoned.Store(false)
	if n, err := s.RetryDeadLetters(ctx); n != 3 || err != nil {
		t.Fatalf("RetryDeadLetters after refusals queued %d (%v), want 3", n, err)
	}
	waitFor(t, 10*time.Second, func() bool { ob, _ := st.Outbox(); return len(ob.DeadLetters) == 0 })
	exactlyOnce(t, st, sk)
	mu.Lock()
	defer mu.Unlock()
	for _, d := range ob.DeadLetters {
		if n := sent[wire.BatchPath("fg-test", d.First, d.Last)]; n != 3 {
			t.Errorf("batch %d-%d was sent %d times, want 3 (first send, two retries)", d.First, d.Last, n)
		}
	}
}

func TestTooLargeBatchesAreSplit(t *testing.T) {
	st := testStore(t, 1000)
	sk, srv := cloud(t, "secret")
	sk.SetFaults(sink.Faults{MaxReadings: 30})
	s := running(t, st, fastOptions(srv.URL))
	drained(t, st, 20*time.Second)
	exactlyOnce(t, st, sk)
	if x := s.Status(); x.Splits == 0 || x.DeadLettered != 0 {
		t.Errorf("status %+v: want splits and no dead letters", x)
	}
}

// TestSlowLinkSplitsBatches answers each batch after 4 ms per reading, as
// a link or a receiver too slow for large batches: past the 200 ms timeout
// a 100-reading batch could never go through, its halves do.
func TestSlowLinkSplitsBatches(t *testing.T) {
	st := testStore(t, 400)
	sk := sink.New("secret")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var first, last uint64
		if _, err := fmt.Sscanf(path.Base(r.URL.Path), "%d-%d", &first, &last); err == nil {
			select {
			case <-time.After(time.Duration(last-first+1) * 4 * time.Millisecond):
			case <-r.Context().Done():
			}
		}
		sk.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	o := fastOptions(srv.URL)
	o.Timeout = 200 * time.Millisecond
	s := running(t, st, o)
	drained(t, st, 30*time.Second)
	exactlyOnce(t, st, sk)
	if x := s.Status(); x.Splits == 0 || x.DeadLettered != 0 {
		t.Errorf("status %+v: want splits and no dead letters", x)
	}
}

// TestAnOutageIsLoggedBothWays: the cloud goes away and comes back; the
// uplink says so when it goes offline and when it is back, with how long
// it lasted and how many readings waited, and the status keeps it.
func TestAnOutageIsLoggedBothWays(t *testing.T) {
	st := testStore(t, 300)
	sk, srv := cloud(t, "secret")
	sk.SetFaults(sink.Faults{Down: true})
	var log syncBuffer
	o := fastOptions(srv.URL)
	o.Logger = slog.New(slog.NewTextHandler(&log, nil))
	s := running(t, st, o)
	waitStatus(t, s, func(x Status) bool { return x.State == "offline" })
	sk.SetFaults(sink.Faults{})
	drained(t, st, 10*time.Second)
	out := s.Status().LastOutage
	if out.Since.IsZero() || out.Until.Before(out.Since) || out.Waiting == 0 || out.Waiting > 300 {
		t.Errorf("last outage %+v: want its start, end and the readings that waited", out)
	}
	text := log.String()
	for _, want := range []string{"uplink: cloud unreachable", "uplink: the cloud answers again", "outage=", "waiting="} {
		if !strings.Contains(text, want) {
			t.Errorf("log lacks %q:\n%s", want, text)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestLiveReadingsGoFirst(t *testing.T) {
	st := testStore(t, 10000)
	sk, srv := cloud(t, "secret")
	o := fastOptions(srv.URL)
	o.BacklogRate = 2000 // the backlog takes ~5 s
	running(t, st, o)
	waitFor(t, 5*time.Second, func() bool { return len(sk.Readings()) > 0 }) // the backlog is draining
	appendN(t, st, 10, 1_000_000)                                            // live readings, seqs 10001–10010
	waitFor(t, 5*time.Second, func() bool {
		_, ok := sk.Readings()[wire.ReadingID("fg-test", st.Incarnation(), 10010)]
		return ok
	})
	ob, err := st.Outbox()
	if err != nil {
		t.Fatal(err)
	}
	if ob.Acked >= 10000 {
		t.Fatalf("the backlog drained before the live readings went out (acked %d)", ob.Acked)
	}
	t.Logf("live readings delivered while the backlog stood at %d of 10000", ob.Acked)
	drained(t, st, 30*time.Second)
	exactlyOnce(t, st, sk)
}

// TestLiveFirstAfterAnOutage: readings that piled up while the cloud was
// down become backlog; readings stored after it came back go out first.
func TestLiveFirstAfterAnOutage(t *testing.T) {
	st := testStore(t, 0)
	sk, srv := cloud(t, "secret")
	o := fastOptions(srv.URL)
	o.BacklogRate = 2000
	s := running(t, st, o)
	sk.SetFaults(sink.Faults{Down: true})
	appendN(t, st, 8000, 0) // buffered during the outage
	waitStatus(t, s, func(x Status) bool { return x.State == "offline" })
	sk.SetFaults(sink.Faults{})
	// Online means the sender has processed its first success since the
	// outage: readings stored from now on are fresh.
	waitStatus(t, s, func(x Status) bool { return x.State == "online" })
	appendN(t, st, 10, 1_000_000) // fresh readings, seqs 8001–8010
	waitFor(t, 5*time.Second, func() bool {
		_, ok := sk.Readings()[wire.ReadingID("fg-test", st.Incarnation(), 8010)]
		return ok
	})
	if n := len(sk.Readings()); n >= 8000 {
		t.Fatalf("the fresh readings waited for the whole backlog (%d delivered first)", n)
	}
	drained(t, st, 30*time.Second)
	exactlyOnce(t, st, sk)
}

func TestRestartResendsRecordedBatchesIdentically(t *testing.T) {
	st := testStore(t, 500)
	// A previous run recorded two batches and crashed before sending them.
	for _, b := range [][2]uint64{{1, 100}, {101, 250}} {
		if got, _, _, err := st.FormBatch(b[0], b[1], store.BatchLimits{}); err != nil || got.First != b[0] || got.Last != b[1] {
			t.Fatalf("FormBatch(%d, %d) = %+v, %v", b[0], b[1], got, err)
		}
	}
	var mu sync.Mutex
	var keys []string
	sk := sink.New("secret")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		sk.ServeHTTP(w, r)
	}))
	defer srv.Close()
	o := fastOptions(srv.URL)
	o.InFlight = 1
	running(t, st, o)
	drained(t, st, 10*time.Second)
	exactlyOnce(t, st, sk)
	mu.Lock()
	defer mu.Unlock()
	if len(keys) < 2 || keys[0] != wire.IdempotencyKey("fg-test", st.Incarnation(), 1, 100) || keys[1] != wire.IdempotencyKey("fg-test", st.Incarnation(), 101, 250) {
		t.Errorf("first requests %v: the recorded batches must go first, with their bounds", keys[:min(3, len(keys))])
	}
}

func waitStatus(t *testing.T, s *Sender, cond func(Status) bool) {
	t.Helper()
	waitFor(t, 10*time.Second, func() bool { return cond(s.Status()) })
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDrainCrossesReadingsDroppedInFlight is the long-offline gateway with
// a full disk: while the first batch is in flight, drop_oldest deletes the
// readings after it. Every surviving reading must still reach the cloud
// and the cursor must pass the gap, or retention stops for good.
func TestDrainCrossesReadingsDroppedInFlight(t *testing.T) {
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "fieldgate.db"), GatewayID: "fg-test", Config: store.Config{MaxSize: 1 << 20, FullPolicy: store.FullDropOldest}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	appendN(t, st, 300, 0)
	sk := sink.New("secret")
	release, first := make(chan struct{}), make(chan struct{})
	var once, released sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(first); <-release }) // the first batch hangs in flight
		sk.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { released.Do(func() { close(release) }) })
	o := fastOptions(srv.URL)
	o.InFlight = 1
	running(t, st, o)
	<-first
	appendN(t, st, 40000, 300) // about 4 MiB into a 1 MiB cap: the oldest unsent go
	d, _, err := st.Removed()
	if err != nil || d["full_drop_oldest"] == 0 {
		t.Fatalf("nothing dropped (%v, %v): the test did not fill the store", d, err)
	}
	released.Do(func() { close(release) })
	drained(t, st, 30*time.Second)
	exactlyOnce(t, st, sk)
	ob, err := st.Outbox()
	if err != nil || ob.Unsent != 0 {
		t.Errorf("outbox %+v, %v: want nothing unsent", ob, err)
	}
}

// TestRedirectIsAConfigurationErrorNotADelivery: an http:// URL behind a
// load balancer that moves clients to https:// gets a 301. Following it
// turned the PUT into a body-less GET whose 200 was taken for the batch's
// acknowledgement: the readings were deleted later and never reached the
// cloud. Now a 3xx pauses sending with the Location in the status, and
// nothing is acknowledged until the URL answers.
func TestRedirectIsAConfigurationErrorNotADelivery(t *testing.T) {
	st := testStore(t, 50)
	sk := sink.New("secret")
	var redirect atomic.Bool
	redirect.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/moved":
			w.WriteHeader(http.StatusOK) // what a redirect target answers a GET with
		case redirect.Load():
			http.Redirect(w, r, "/moved", http.StatusMovedPermanently)
		default:
			sk.ServeHTTP(w, r)
		}
	}))
	defer srv.Close()
	s := running(t, st, fastOptions(srv.URL))
	waitStatus(t, s, func(x Status) bool {
		return x.State == "redirected" && strings.Contains(x.LastError, "301") && strings.Contains(x.LastError, "/moved")
	})
	if ob, _ := st.Outbox(); ob.Acked != 0 || ob.Unsent != 50 {
		t.Fatalf("outbox %+v while redirected: nothing may count as delivered", ob)
	}
	redirect.Store(false) // the URL fixed
	drained(t, st, 30*time.Second)
	exactlyOnce(t, st, sk)
}

// TestTheStatusIsReported: with a Report, the sender PUTs the gateway's
// status when the cloud first answers and then every StatusInterval: its
// backlog, clock, health and autonomy, for the fleet view. A receiver
// without the status endpoint (404) stops it, and batches go on.
func TestTheStatusIsReported(t *testing.T) {
	st := testStore(t, 300)
	sk, srv := cloud(t, "secret")
	o := fastOptions(srv.URL)
	o.Version = "test"
	o.StatusInterval = 50 * time.Millisecond
	o.Report = func() Report { return Report{Synced: true, Health: "degraded", Autonomy: 2 * time.Hour} }
	running(t, st, o)
	drained(t, st, 10*time.Second)
	waitFor(t, 10*time.Second, func() bool { s, ok := sk.Statuses()["fg-test"]; return ok && s.Backlog == 0 })
	s := sk.Statuses()["fg-test"]
	if s.Clock != "synced" || s.Health != "degraded" || s.AutonomySeconds != 7200 || s.Incarnation != st.Incarnation() || s.Version != "test" || s.OldestUnsent != "" {
		t.Errorf("status %+v", s)
	}

	// An older receiver: 404 for the status, batches as ever.
	st2 := testStore(t, 50)
	var statusPuts atomic.Int32
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/status") {
			statusPuts.Add(1)
			http.NotFound(w, r)
			return
		}
		sk.ServeHTTP(w, r)
	}))
	t.Cleanup(old.Close)
	o2 := fastOptions(old.URL)
	o2.StatusInterval = 20 * time.Millisecond
	o2.Report = o.Report
	s2 := running(t, st2, o2)
	drained(t, st2, 10*time.Second)
	waitFor(t, 10*time.Second, func() bool { return statusPuts.Load() > 0 })
	appendN(t, st2, 10, 1000) // more batches after the 404: still sent, no more status
	drained(t, st2, 10*time.Second)
	if n := statusPuts.Load(); n != 1 {
		t.Errorf("%d status PUTs to a receiver that answered 404, want 1", n)
	}
	if x := s2.Status(); x.State != "online" {
		t.Errorf("uplink %+v after the status 404: want online", x)
	}
}
