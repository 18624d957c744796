package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"golang.org/x/crypto/bcrypt"

	"fieldgate/broker"
	"fieldgate/sensors"
	"fieldgate/store"
	"fieldgate/store/clock"
	"fieldgate/uplink"
)

// fakeSensors, fakeBroker and fakeUplink stand in for the components.
type fakeSensors struct{ health []sensors.Health }

func (f *fakeSensors) Health() []sensors.Health { return f.health }

type fakeBroker struct {
	mu           sync.Mutex
	stats        broker.Stats
	disconnected []string
	probeErr     error
	probes       int
}

func (f *fakeBroker) Stats() broker.Stats { return f.stats }
func (f *fakeBroker) Probe(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.probes++
	return f.probeErr
}
func (f *fakeBroker) LiveDevice(d store.Device) store.Device { return d }
func (f *fakeBroker) Disconnect(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.disconnected = append(f.disconnected, id)
}
func (f *fakeBroker) Removed(id string) { f.Disconnect(id) }

type fakeUplink struct {
	status     uplink.Status
	retried    []uint64
	retry      func(first uint64) error
	retriedAll int
}

func (f *fakeUplink) Status() uplink.Status                         { return f.status }
func (f *fakeUplink) RetryDeadLetters(context.Context) (int, error) { f.retriedAll++; return 0, nil }
func (f *fakeUplink) RetryDeadLetter(_ context.Context, first uint64) error {
	f.retried = append(f.retried, first)
	return f.retry(first)
}

// env is an API over a real store, served by a real HTTP server, with
// every response checked against openapi.yaml.
type env struct {
	t       testing.TB
	st      *store.Store
	srv     *Server
	ts      *httptest.Server
	sensors *fakeSensors
	broker  *fakeBroker
	uplink  *fakeUplink
	clock   clock.State
	router  routers.Router
	now     time.Time
	tokens  map[Role]string
	// validated counts answers checked against openapi.yaml.
	validated int
}

var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func newEnv(t testing.TB, o Options) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(store.Options{Path: filepath.Join(dir, "fieldgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, now: t0, clock: clock.State{Synced: true},
		sensors: &fakeSensors{health: []sensors.Health{{Name: "lab", Source: "sim-lab", Driver: "sim", State: "ok", LastGood: t0}}},
		broker:  &fakeBroker{stats: broker.Stats{Clients: 2, Messages: 10, Readings: 20}},
		uplink:  &fakeUplink{status: uplink.Status{State: "online"}, retry: func(uint64) error { return nil }},
	}
	var mu sync.Mutex
	o.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return e.now }
	if o.ExportDir == "" {
		o.ExportDir = filepath.Join(dir, "exports")
	}
	if o.Version == "" {
		o.Version = "test"
	}
	if o.RateLimit == 0 {
		o.RateLimit, o.RateBurst = 1000, 1000
	}
	e.srv, err = New(Deps{Store: st, Broker: e.broker, Sensors: e.sensors, Uplink: e.uplink,
		Clock:            func() clock.State { return e.clock },
		ValidateDeviceID: func(id string) error { return nil }}, o)
	if err != nil {
		t.Fatal(err)
	}
	e.ts = httptest.NewServer(e.srv)
	t.Cleanup(func() {
		e.ts.Close()
		if err := e.srv.Close(); err != nil {
			t.Error(err)
		}
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	doc, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	doc.Servers = openapi3.Servers{{URL: e.ts.URL + "/api/v1"}}
	if e.router, err = gorillamux.NewRouter(doc); err != nil {
		t.Fatal(err)
	}
	e.tokens = map[Role]string{}
	for _, r := range []Role{RoleViewer, RoleTechnician, RoleAdmin} {
		e.addUser(r.String(), r)
		bearer, tok := newToken(r.String(), r, "api", "test", t0, 0)
		if err := st.PutToken(tok, t0); err != nil {
			t.Fatal(err)
		}
		e.tokens[r] = bearer
	}
	return e
}

// addUser stores a user whose password is its name + "-password".
func (e *env) addUser(name string, role Role) {
	e.t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(name+"-password"), bcrypt.MinCost)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.st.PutUser(store.User{Name: name, Role: role.String(), PasswordHash: h, CreatedAt: t0}); err != nil {
		e.t.Fatal(err)
	}
}

// append stores readings of source/quantity at t0-n+i minutes, value i.
func (e *env) append(source, quantity string, n int) {
	e.t.Helper()
	rs := make([]store.Reading, n)
	for i := range rs {
		rs[i] = store.Reading{Source: source, Quantity: quantity, Value: float64(i), Unit: "Cel",
			Time: t0.Add(time.Duration(i-n) * time.Minute)}
	}
	if err := e.st.Append(context.Background(), rs...); err != nil {
		e.t.Fatal(err)
	}
}

type resp struct {
	*http.Response
	body []byte
}

func (r *resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
}

// errorCode returns the first error code of an error body.
func (r *resp) errorCode(t *testing.T) int {
	t.Helper()
	var b struct{ Errors []apiError }
	r.json(t, &b)
	if len(b.Errors) == 0 {
		t.Fatalf("error body without errors: %s", r.body)
	}
	return b.Errors[0].Code
}

// req is a request to make; role picks a token (RoleNone: none).
type req struct {
	method, path string
	body         any // string: sent as is; else JSON
	role         Role
	header       map[string]string
}

// do makes r and validates the answer against the OpenAPI document when
// the path is under /api/v1.
func (e *env) do(r req) *resp {
	e.t.Helper()
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		body = bytes.NewReader(js)
	}
	hr, err := http.NewRequest(r.method, e.ts.URL+r.path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.role != RoleNone {
		hr.Header.Set("Authorization", "Bearer "+e.tokens[r.role])
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	out := &resp{Response: res}
	if out.body, err = io.ReadAll(res.Body); err != nil {
		e.t.Fatal(err)
	}
	if strings.HasPrefix(r.path, "/api/v1/") && r.method != http.MethodOptions { // preflights are CORS, not the API
		e.validate(hr, out)
	}
	return out
}

func init() {
	// Exports are text; the schema says string.
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", func(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(body)
		return string(b), err
	})
}

// validate checks a response against the operation it answers.
func (e *env) validate(hr *http.Request, r *resp) {
	e.t.Helper()
	route, params, err := e.router.FindRoute(hr)
	if err != nil {
		if r.StatusCode == http.StatusNotFound || r.StatusCode == http.StatusMethodNotAllowed {
			return // a path or method the API does not have: nothing to check
		}
		e.t.Errorf("%s %s: no operation in openapi.yaml: %v", hr.Method, hr.URL.Path, err)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: hr, PathParams: params, Route: route},
		Status:                 r.StatusCode, Header: r.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	body := r.body
	if r.Header.Get("Content-Encoding") == "gzip" && len(body) > 0 { // asked for explicitly: validate what it holds
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err == nil {
			body, err = io.ReadAll(zr)
		}
		if err != nil {
			e.t.Errorf("%s %s: bad gzip body: %v", hr.Method, hr.URL, err)
			return
		}
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		e.t.Errorf("%s %s → %d does not match openapi.yaml: %v\nbody: %.600s", hr.Method, hr.URL, r.StatusCode, err, r.body)
		return
	}
	e.validated++
}
