package uplink

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fieldgate/uplink/sink"
	"fieldgate/uplink/wire"
)

// misconfigured is a cloud that answers every batch as a wrongly set URL
// does, until fixed: then the sink behind it takes them.
func misconfigured(t *testing.T, status int, body string) (*sink.Sink, *atomic.Bool, string) {
	t.Helper()
	sk := sink.New("secret")
	var fixed atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fixed.Load() {
			sk.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return sk, &fixed, srv.URL
}

// TestAWrongURLDeadLettersNothing: a wrong path prefix, a load balancer's
// default 404, a 405, a firewall's 400 page — answers without the
// contract's error body — used to turn the whole backlog into dead
// letters at full speed. They pause sending and say so; once the URL
// answers, everything is delivered, once, and no dead letter was made.
func TestAWrongURLDeadLettersNothing(t *testing.T) {
	for _, c := range []struct {
		status int
		body   string
	}{
		{http.StatusNotFound, "404 page not found"},
		{http.StatusMethodNotAllowed, "<html>Method Not Allowed</html>"},
		{http.StatusBadRequest, "<html><body>Request blocked by the firewall</body></html>"},
		{http.StatusNotFound, `{"errors":[{"code":404,"message":"no such resource"}]}`}, // the contract's body, but not one of its refusals
	} {
		t.Run(http.StatusText(c.status), func(t *testing.T) {
			st := testStore(t, 500)
			sk, fixed, url := misconfigured(t, c.status, c.body)
			s := running(t, st, fastOptions(url))
			waitStatus(t, s, func(x Status) bool { return x.State == "misconfigured" })
			time.Sleep(200 * time.Millisecond) // time enough to dead-letter everything, as before
			ob, err := st.Outbox()
			if err != nil {
				t.Fatal(err)
			}
			if len(ob.DeadLetters) != 0 {
				t.Fatalf("%d dead letters from a wrong URL", len(ob.DeadLetters))
			}
			if x := s.Status(); !strings.Contains(x.LastError, "uplink.url") {
				t.Errorf("the status does not say what to fix: %q", x.LastError)
			}
			fixed.Store(true)
			drained(t, st, 10*time.Second)
			exactlyOnce(t, st, sk)
		})
	}
}

// TestARunOfRefusalsPauses: when the receiver refuses batch after batch
// with the contract's own answers, sending pauses instead of
// dead-lettering the whole backlog at full speed.
func TestARunOfRefusalsPauses(t *testing.T) {
	st := testStore(t, 2000)
	sk, srv := cloud(t, "secret")
	sk.SetFaults(sink.Faults{Reject: func(wire.ReadingBody) bool { return true }})
	o := fastOptions(srv.URL)
	o.AuthRetry = time.Hour // a pause lasts: what was dead-lettered before it is all there is
	o.InFlight = 1
	s := running(t, st, o)
	waitStatus(t, s, func(x Status) bool { return x.State == "refusing" })
	ob, err := st.Outbox()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ob.DeadLetters); n != maxRefusedRun {
		t.Errorf("%d dead letters before the pause, want %d", n, maxRefusedRun)
	}
}

// TestStillInProgressIsRetried: a receiver that answers 409 while it
// stores a batch (the IETF Idempotency-Key draft) gets it again a few
// times before the batch counts as refused.
func TestStillInProgressIsRetried(t *testing.T) {
	st := testStore(t, 50)
	sk := sink.New("secret")
	var busy atomic.Int32
	busy.Store(2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if busy.Add(-1) >= 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"errors":[{"code":409,"message":"a request with this key is in progress"}]}`))
			return
		}
		sk.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	o := fastOptions(srv.URL)
	o.InFlight = 1
	running(t, st, o)
	drained(t, st, 10*time.Second)
	exactlyOnce(t, st, sk)
	if ob, _ := st.Outbox(); len(ob.DeadLetters) != 0 {
		t.Errorf("dead letters %+v", ob.DeadLetters)
	}
}
