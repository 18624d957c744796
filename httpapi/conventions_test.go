package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestNegotiation(t *testing.T) {
	e := newEnv(t, Options{Config: Config{OpenReads: true}})
	tests := []struct {
		name string
		req  req
		want int
	}{
		{"accept xml", req{method: "GET", path: "/api/v1/status", header: map[string]string{"Accept": "application/xml"}}, 406},
		{"accept json q0", req{method: "GET", path: "/api/v1/status", header: map[string]string{"Accept": "application/json;q=0, text/html"}}, 406},
		{"accept any", req{method: "GET", path: "/api/v1/status", header: map[string]string{"Accept": "text/html, */*;q=0.1"}}, 200},
		{"accept application/*", req{method: "GET", path: "/api/v1/status", header: map[string]string{"Accept": "application/*"}}, 200},
		{"body not json", req{method: "PUT", path: "/api/v1/devices/esp-9", body: "name=x", role: RoleTechnician,
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415},
		{"body too large", req{method: "PUT", path: "/api/v1/devices/esp-9", body: `{"name":"` + strings.Repeat("x", 70<<10) + `"}`, role: RoleTechnician}, 413},
		{"method not allowed", req{method: "POST", path: "/api/v1/status"}, 405},
		{"export csv accepted", req{method: "GET", path: "/api/v1/readings/export", role: RoleTechnician, header: map[string]string{"Accept": "text/csv"}}, 200},
		{"export ndjson refused by Accept", req{method: "GET", path: "/api/v1/readings/export?format=ndjson", role: RoleTechnician, header: map[string]string{"Accept": "text/csv"}}, 406},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.req)
			if r.StatusCode != tt.want {
				t.Fatalf("→ %d, want %d: %s", r.StatusCode, tt.want, r.body)
			}
			if r.StatusCode >= 400 && r.errorCode(t) != tt.want {
				t.Errorf("error code %d, want %d", r.errorCode(t), tt.want)
			}
		})
	}
	r := e.do(req{method: "DELETE", path: "/api/v1/status"})
	if allow := r.Header.Get("Allow"); allow != "GET" {
		t.Errorf("405 Allow = %q, want GET", allow)
	}
}

func TestETag(t *testing.T) {
	e := newEnv(t, Options{Config: Config{OpenReads: true}})
	e.append("esp-1", "temperature", 3)
	for _, path := range []string{"/api/v1/sources", "/api/v1/sources/esp-1", "/api/v1/sources/esp-1/readings",
		"/api/v1/sources/esp-1/series", "/api/v1/devices", "/api/v1/uplink/deadletters", "/api/v1/openapi.json", "/api/v1/status"} {
		t.Run(path, func(t *testing.T) {
			first := e.do(req{method: "GET", path: path})
			etag := first.Header.Get("ETag")
			if first.StatusCode != 200 || etag == "" || first.Header.Get("Cache-Control") == "" {
				t.Fatalf("→ %d ETag %q Cache-Control %q", first.StatusCode, etag, first.Header.Get("Cache-Control"))
			}
			again := e.do(req{method: "GET", path: path, header: map[string]string{"If-None-Match": `"other", ` + etag}})
			if path == "/api/v1/status" && again.StatusCode == http.StatusOK && again.Header.Get("ETag") != etag {
				return // its body carries the file system's free space, which other processes change
			}
			if again.StatusCode != http.StatusNotModified || len(again.body) != 0 {
				t.Errorf("If-None-Match %s → %d with %d bytes, want 304 and none", etag, again.StatusCode, len(again.body))
			}
		})
	}
	// A change makes a new ETag.
	before := e.do(req{method: "GET", path: "/api/v1/sources/esp-1/readings"}).Header.Get("ETag")
	e.append("esp-1", "temperature", 1)
	after := e.do(req{method: "GET", path: "/api/v1/sources/esp-1/readings", header: map[string]string{"If-None-Match": before}})
	if after.StatusCode != 200 || after.Header.Get("ETag") == before {
		t.Errorf("after a new reading: %d with ETag %s (was %s)", after.StatusCode, after.Header.Get("ETag"), before)
	}
	users := e.do(req{method: "GET", path: "/api/v1/users", role: RoleAdmin})
	if cc := users.Header.Get("Cache-Control"); cc != cachePrivate {
		t.Errorf("users Cache-Control %q, want %q", cc, cachePrivate)
	}
}

// TestAuthMatrix checks every role against changes of each level, with no
// token, a wrong token, an expired one and a revoked user.
func TestAuthMatrix(t *testing.T) {
	e := newEnv(t, Options{Config: Config{OpenReads: false}})
	expired, tok := newToken("admin", RoleAdmin, "session", "login", t0.Add(-2*time.Hour), time.Hour)
	if err := e.st.PutToken(tok, t0.Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.addUser("gone", RoleAdmin)
	revoked, tok := newToken("gone", RoleAdmin, "api", "x", t0, 0)
	if err := e.st.PutToken(tok, t0); err != nil {
		t.Fatal(err)
	}
	if err := e.st.DeleteUser("gone"); err != nil {
		t.Fatal(err)
	}
	ops := []struct {
		name string
		req  req
		need Role
		ok   int
	}{
		{"read status", req{method: "GET", path: "/api/v1/status"}, RoleViewer, 200},
		{"create device", req{method: "PUT", path: "/api/v1/devices/esp-7", body: map[string]any{}}, RoleTechnician, 0},
		{"start export", req{method: "POST", path: "/api/v1/exports", body: map[string]any{}}, RoleTechnician, 202},
		{"list users", req{method: "GET", path: "/api/v1/users"}, RoleAdmin, 200},
		{"create token", req{method: "POST", path: "/api/v1/tokens", body: map[string]any{"name": "n", "role": "viewer"}}, RoleAdmin, 201},
	}
	for _, op := range ops {
		for _, role := range []Role{RoleNone, RoleViewer, RoleTechnician, RoleAdmin} {
			t.Run(op.name+"/"+role.String(), func(t *testing.T) {
				r := e.do(req{method: op.req.method, path: op.req.path, body: op.req.body, role: role})
				switch {
				case role == RoleNone && r.StatusCode != 401:
					t.Errorf("no token → %d, want 401", r.StatusCode)
				case role == RoleNone && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer"):
					t.Errorf("401 without WWW-Authenticate: Bearer")
				case role != RoleNone && role < op.need && r.StatusCode != 403:
					t.Errorf("%s → %d, want 403", role, r.StatusCode)
				case role >= op.need && r.StatusCode >= 400:
					t.Errorf("%s → %d, want success: %s", role, r.StatusCode, r.body)
				}
			})
		}
		for name, bearer := range map[string]string{"expired": expired, "revoked": revoked, "garbage": "fgt_nonsense", "forged": e.tokens[RoleAdmin][:len(e.tokens[RoleAdmin])-4] + "AAAA"} {
			t.Run(op.name+"/"+name, func(t *testing.T) {
				r := e.do(req{method: op.req.method, path: op.req.path, body: op.req.body, header: map[string]string{"Authorization": "Bearer " + bearer}})
				if r.StatusCode != 401 {
					t.Errorf("%s token → %d, want 401", name, r.StatusCode)
				}
			})
		}
	}
	// Open reads: anyone reads, nobody changes without a token.
	open := newEnv(t, Options{Config: Config{OpenReads: true}})
	if r := open.do(req{method: "GET", path: "/api/v1/status"}); r.StatusCode != 200 {
		t.Errorf("open read → %d", r.StatusCode)
	}
	if r := open.do(req{method: "DELETE", path: "/api/v1/devices/x"}); r.StatusCode != 401 {
		t.Errorf("open change → %d", r.StatusCode)
	}
}

func TestLoginLogout(t *testing.T) {
	e := newEnv(t, Options{})
	var tok tokenResponse
	e.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"username": "technician", "password": "technician-password"}}).json(t, &tok)
	if tok.ExpiresAt == nil || !tok.ExpiresAt.Equal(t0.Add(12*time.Hour)) {
		t.Errorf("session expires %v, want 12 h after login", tok.ExpiresAt)
	}
	bearer := map[string]string{"Authorization": "Bearer " + tok.Token}
	if r := e.do(req{method: "PUT", path: "/api/v1/devices/esp-3", body: map[string]any{}, header: bearer}); r.StatusCode != 201 {
		t.Fatalf("with the session token → %d: %s", r.StatusCode, r.body)
	}
	e.now = t0.Add(13 * time.Hour)
	if r := e.do(req{method: "GET", path: "/api/v1/status", header: bearer}); r.StatusCode != 401 {
		t.Errorf("after expiry → %d, want 401", r.StatusCode)
	}
	e.now = t0
	if r := e.do(req{method: "POST", path: "/api/v1/auth/logout", header: bearer}); r.StatusCode != 204 {
		t.Fatalf("logout → %d", r.StatusCode)
	}
	if r := e.do(req{method: "GET", path: "/api/v1/status", header: bearer}); r.StatusCode != 401 {
		t.Errorf("after logout → %d, want 401", r.StatusCode)
	}
	if _, err := e.st.Token(tok.ID); err == nil {
		t.Error("logout left the token in the store")
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, Options{Config: Config{OpenReads: true, RateLimit: 1, RateBurst: 3}})
	forged := map[string]string{"X-Forwarded-For": "203.0.113.9"}
	for i := range 3 {
		h := map[string]string{"X-Forwarded-For": "198.51.100." + strconv.Itoa(i)} // a new "client" each time: ignored
		if r := e.do(req{method: "GET", path: "/api/v1/status", header: h}); r.StatusCode != 200 {
			t.Fatalf("request %d → %d", i, r.StatusCode)
		}
	}
	r := e.do(req{method: "GET", path: "/api/v1/status", header: forged})
	if r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("4th request with a forged X-Forwarded-For → %d, want 429", r.StatusCode)
	}
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	e.now = e.now.Add(2 * time.Second)
	if r := e.do(req{method: "GET", path: "/api/v1/status"}); r.StatusCode != 200 {
		t.Errorf("after waiting → %d", r.StatusCode)
	}
	// Probes share the client's limit (a loop polling them is a flood
	// like any other); the watchdog's in-process check does not.
	e.now = e.now.Add(2 * time.Second)
	codes := map[int]int{}
	for range 5 {
		codes[e.do(req{method: "GET", path: "/healthz"}).StatusCode]++
	}
	if codes[http.StatusTooManyRequests] == 0 {
		t.Errorf("five /healthz at once → %v, want the limit to apply", codes)
	}
	for range 5 {
		if err := e.srv.CheckHealth(context.Background()); err != nil {
			t.Fatalf("the watchdog's check: %v", err)
		}
	}
}

func TestTrustedProxy(t *testing.T) {
	e := newEnv(t, Options{Config: Config{OpenReads: true, RateLimit: 1, RateBurst: 1, TrustedProxies: []string{"127.0.0.1"}}})
	for i := range 3 { // behind a trusted proxy each forwarded client has its own budget
		h := map[string]string{"X-Forwarded-For": "198.51.100." + strconv.Itoa(i)}
		if r := e.do(req{method: "GET", path: "/api/v1/status", header: h}); r.StatusCode != 200 {
			t.Fatalf("client %d → %d", i, r.StatusCode)
		}
	}
}

func TestCORS(t *testing.T) {
	e := newEnv(t, Options{Config: Config{OpenReads: true, CORSOrigins: []string{"http://tablet.local"}}})
	r := e.do(req{method: "OPTIONS", path: "/api/v1/devices/x", header: map[string]string{
		"Origin": "http://tablet.local", "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization,content-type"}})
	if r.StatusCode != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "http://tablet.local" ||
		!strings.Contains(r.Header.Get("Access-Control-Allow-Methods"), "PUT") {
		t.Errorf("preflight → %d %v", r.StatusCode, r.Header)
	}
	r = e.do(req{method: "GET", path: "/api/v1/status", header: map[string]string{"Origin": "http://tablet.local"}})
	if r.Header.Get("Access-Control-Allow-Origin") != "http://tablet.local" || !strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "Etag") {
		t.Errorf("simple request headers %v", r.Header)
	}
	r = e.do(req{method: "GET", path: "/api/v1/status", header: map[string]string{"Origin": "http://evil.example"}})
	if r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign origin → %d %v", r.StatusCode, r.Header)
	}
}

func TestProbes(t *testing.T) {
	e := newEnv(t, Options{})
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := e.do(req{method: "GET", path: p}); r.StatusCode != 200 {
			t.Errorf("%s → %d: %s", p, r.StatusCode, r.body)
		}
	}
	// /readyz's MQTT round trip is made at most once a second, however
	// often it is asked.
	for range 5 {
		e.do(req{method: "GET", path: "/readyz"})
	}
	if e.broker.probes != 1 {
		t.Errorf("six /readyz within a second made %d MQTT probes, want 1", e.broker.probes)
	}
	e.append("esp-1", "temperature", 2)
	if r := e.do(req{method: "GET", path: "/metrics"}); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics with reads closed and no token → %d, want 401", r.StatusCode)
	}
	r := e.do(req{method: "GET", path: "/metrics", role: RoleViewer})
	for _, want := range []string{"fieldgate_readings_committed_total 2", "fieldgate_store_readings 2", "fieldgate_uplink_online 1",
		"fieldgate_mqtt_clients 2", `fieldgate_sensor_state{sensor="lab",source="sim-lab",state="ok"} 1`, "go_goroutines", "fieldgate_commit_duration_seconds_bucket"} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	if r := e.do(req{method: "GET", path: "/readyz"}); r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "shutting down") {
		t.Errorf("readyz on a closed store → %d %s", r.StatusCode, r.body)
	}
}
