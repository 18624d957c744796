package receiver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"fieldgate/cmd/fieldgate-cloud/receiver/pgtest"
	"fieldgate/uplink/wire"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// receiver is a Server on a fresh migrated database, with gateways gw-a
// and gw-b registered.
type receiver struct {
	t      *testing.T
	url    string // the database's
	db     *DB
	srv    *Server
	tokens map[string]string
}

func newReceiver(t *testing.T, opt Options) *receiver {
	t.Helper()
	return newReceiverOn(t, pgtest.NewDB(t), opt)
}

func newReceiverOn(t *testing.T, url string, opt Options) *receiver {
	t.Helper()
	return newReceiverDB(t, url, opt, DBOptions{})
}

// newReceiverWith is newReceiver with the database's options too.
func newReceiverWith(t *testing.T, opt Options, dbOpt DBOptions) *receiver {
	t.Helper()
	return newReceiverDB(t, pgtest.NewDB(t), opt, dbOpt)
}

func newReceiverDB(t *testing.T, url string, opt Options, dbOpt DBOptions) *receiver {
	t.Helper()
	db, err := Open(t.Context(), url, dbOpt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if _, _, err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, url: url, db: db, srv: NewServer(db, opt), tokens: map[string]string{}}
	for _, id := range []string{"gw-a", "gw-b"} {
		if r.tokens[id], err = db.AddGateway(t.Context(), id, "test "+id); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// batch is a batch of gw with a reading per value, seqs first, first+1, ….
func batch(gw string, first uint64, values ...float64) wire.BatchBody {
	b := wire.BatchBody{Gateway: gw, FirstSeq: first, LastSeq: first + uint64(len(values)) - 1}
	for i, v := range values {
		b.Readings = append(b.Readings, wire.ReadingBody{Seq: first + uint64(i), Source: "esp32-a", Quantity: "temperature",
			Value: v, Unit: "Cel", Time: fmt.Sprintf("2026-11-22T10:00:%02d.5Z", (first+uint64(i)-1)%60), Clock: "synced"})
	}
	return b
}

// mustJSON is b's JSON, as the gateway encodes it.
func mustJSON(t testing.TB, b wire.BatchBody) []byte {
	t.Helper()
	js, _, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// gz is b's body as the gateway sends it: JSON, gzip'd.
func gz(t testing.TB, b wire.BatchBody) []byte {
	t.Helper()
	_, body, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// answer is a response's status, Retry-After and body.
type answer struct {
	status     int
	retryAfter string
	body       string
}

// put sends b as gateway token's batch and validates the answer against
// docs/cloud-api.yaml; mod may change the request first.
func (r *receiver) put(token string, b wire.BatchBody, mod func(*http.Request)) answer {
	r.t.Helper()
	return put(r.t, r.srv, token, b, mod)
}

func put(t *testing.T, h http.Handler, token string, b wire.BatchBody, mod func(*http.Request)) answer {
	t.Helper()
	req := httptest.NewRequest(http.MethodPut, wire.BatchPath(b.Gateway, b.FirstSeq, b.LastSeq), bytes.NewReader(gz(t, b)))
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", wire.IdempotencyKey(b.Gateway, b.Incarnation, b.FirstSeq, b.LastSeq))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if mod != nil {
		mod(req)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	validateResponse(t, req, w.Result())
	return answer{w.Code, w.Header().Get("Retry-After"), w.Body.String()}
}

var contract struct {
	once   sync.Once
	router routers.Router
	err    error
}

// validateResponse checks an answer to a batch PUT against the contract.
func validateResponse(t *testing.T, req *http.Request, res *http.Response) {
	t.Helper()
	contract.once.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromFile("../../../docs/cloud-api.yaml")
		if err != nil {
			contract.err = err
			return
		}
		doc.Servers = nil
		contract.router, contract.err = gorillamux.NewRouter(doc)
	})
	if contract.err != nil {
		t.Fatal(contract.err)
	}
	route, params, err := contract.router.FindRoute(req)
	if err != nil {
		return // a path outside the contract (a 404 test)
	}
	body, _ := io.ReadAll(res.Body)
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 res.StatusCode, Header: res.Header, Body: io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("answer %d %s does not match docs/cloud-api.yaml: %v", res.StatusCode, strings.TrimSpace(string(body)), err)
	}
}

// count runs a query returning one number.
func (r *receiver) count(q string, args ...any) int {
	r.t.Helper()
	var n int
	if err := r.db.pool.QueryRow(r.t.Context(), q, args...).Scan(&n); err != nil {
		r.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// metric returns the value of a metric line starting with prefix.
func (r *receiver) metric(prefix string) string {
	r.t.Helper()
	w := httptest.NewRecorder()
	r.srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.Lines(w.Body.String()) {
		if strings.HasPrefix(line, prefix+" ") {
			return strings.TrimSpace(strings.TrimPrefix(line, prefix+" "))
		}
	}
	r.t.Fatalf("no metric %s", prefix)
	return ""
}

// holdBatches locks the batches table, which every batch needs, until
// the test ends or the returned func is called.
func (r *receiver) holdBatches() (release func()) {
	r.t.Helper()
	tx, err := r.db.pool.Begin(r.t.Context())
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := tx.Exec(r.t.Context(), "LOCK TABLE batches IN ACCESS EXCLUSIVE MODE"); err != nil {
		r.t.Fatal(err)
	}
	release = func() { _ = tx.Rollback(r.t.Context()) }
	r.t.Cleanup(release)
	return release
}
