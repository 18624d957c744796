package httpapi

import (
	"slices"
	"strings"
	"testing"
	"time"

	"fieldgate/sensors"
	"fieldgate/store"
	"fieldgate/store/clock"
	"fieldgate/uplink"
)

// TestEndpoints calls every operation with a typical request and checks the
// status; env.do checks each answer against openapi.yaml.
func TestEndpoints(t *testing.T) {
	e := newEnv(t, Options{Config: Config{OpenReads: true}})
	e.append("sim-lab", "temperature", 120)
	e.append("sim-lab", "humidity", 10)
	e.append("esp-1", "temperature", 5)
	if _, err := e.st.PutDevice(store.Device{ID: "esp-1", Name: "porch", CreatedAt: t0, LastSeen: t0, Online: true,
		LastReading: t0.Add(-time.Minute), ReportInterval: time.Minute}); err != nil {
		t.Fatal(err)
	}
	fillOutbox(t, e.st)

	tests := []struct {
		name string
		req  req
		want int
		has  string // a substring the body must hold
	}{
		{"openapi", req{method: "GET", path: "/api/v1/openapi.json"}, 200, `"openapi":"3.0.3"`},
		{"status", req{method: "GET", path: "/api/v1/status"}, 200, `"gateway_id"`},
		{"sources", req{method: "GET", path: "/api/v1/sources"}, 200, `"sim-lab"`},
		{"source", req{method: "GET", path: "/api/v1/sources/esp-1"}, 200, `"state":"ok","state_reason":"reports every minute"`},
		{"source missing", req{method: "GET", path: "/api/v1/sources/nope"}, 404, `no source`},
		{"readings", req{method: "GET", path: "/api/v1/sources/sim-lab/readings?quantity=temperature&per_page=10"}, 200, `"total":120`},
		{"readings one quantity", req{method: "GET", path: "/api/v1/sources/esp-1/readings"}, 200, `"total":5`},
		{"readings which quantity", req{method: "GET", path: "/api/v1/sources/sim-lab/readings"}, 400, `say which one`},
		{"readings bad from", req{method: "GET", path: "/api/v1/sources/esp-1/readings?from=yesterday"}, 400, `RFC 3339`},
		{"readings from before 1678", req{method: "GET", path: "/api/v1/sources/esp-1/readings?quantity=temperature&from=1600-01-01T00:00:00Z"}, 400, `"field":"from"`},
		{"readings to after 2262", req{method: "GET", path: "/api/v1/sources/esp-1/readings?to=2300-01-01T00:00:00Z"}, 400, `outside the times`},
		{"series from before 1678", req{method: "GET", path: "/api/v1/sources/sim-lab/series?quantity=temperature&step=1h&from=1600-01-01T00:00:00Z"}, 400, `"field":"from"`},
		{"readings relative from", req{method: "GET", path: "/api/v1/sources/esp-1/readings?from=-3m"}, 200, `"total":3`},
		{"series", req{method: "GET", path: "/api/v1/sources/sim-lab/series?quantity=temperature&step=1h"}, 200, `"step":"1h0m0s"`},
		{"series bad step", req{method: "GET", path: "/api/v1/sources/sim-lab/series?quantity=temperature&step=1ms"}, 400, `step`},
		{"series too many", req{method: "GET", path: "/api/v1/sources/sim-lab/series?quantity=temperature&step=1s&from=2026-01-01T00:00:00Z"}, 400, `more than`},
		{"devices", req{method: "GET", path: "/api/v1/devices"}, 200, `"porch"`},
		{"device", req{method: "GET", path: "/api/v1/devices/esp-1"}, 200, `"source":"/api/v1/sources/esp-1"`},
		{"device missing", req{method: "GET", path: "/api/v1/devices/nope"}, 404, ``},
		{"device create", req{method: "PUT", path: "/api/v1/devices/esp-2", body: map[string]any{"name": "shed"}, role: RoleTechnician}, 201, `"password":"`},
		{"device replace", req{method: "PUT", path: "/api/v1/devices/esp-2", body: map[string]any{"name": "barn"}, role: RoleTechnician}, 200, `"barn"`},
		{"device patch", req{method: "PATCH", path: "/api/v1/devices/esp-2", body: map[string]any{"reset_password": true}, role: RoleTechnician}, 200, `"password"`},
		{"device patch invalid", req{method: "PATCH", path: "/api/v1/devices/esp-2", body: map[string]any{"admin": "yes"}, role: RoleTechnician}, 422, `"field":"admin"`},
		{"device patch unknown field", req{method: "PATCH", path: "/api/v1/devices/esp-2", body: map[string]any{"colour": "red"}, role: RoleTechnician}, 422, `"field":"colour"`},
		{"device delete", req{method: "DELETE", path: "/api/v1/devices/esp-2", role: RoleTechnician}, 204, ``},
		{"device delete again", req{method: "DELETE", path: "/api/v1/devices/esp-2", role: RoleTechnician}, 404, ``},
		{"dead letters", req{method: "GET", path: "/api/v1/uplink/deadletters"}, 200, `"reason":"bad unit"`},
		{"dead letter retry", req{method: "POST", path: "/api/v1/uplink/deadletters/1/retry", role: RoleTechnician}, 202, `"queued"`},
		{"dead letter retry missing", req{method: "POST", path: "/api/v1/uplink/deadletters/x/retry", role: RoleTechnician}, 404, ``},
		{"dead letters retry all", req{method: "POST", path: "/api/v1/uplink/deadletters/retry", role: RoleTechnician}, 202, `"queued":0`},
		{"dead letter discard as viewer", req{method: "DELETE", path: "/api/v1/uplink/deadletters/1", role: RoleViewer}, 403, ``},
		{"dead letter discard", req{method: "DELETE", path: "/api/v1/uplink/deadletters/1", role: RoleTechnician}, 204, ``},
		{"dead letter discard again", req{method: "DELETE", path: "/api/v1/uplink/deadletters/1", role: RoleTechnician}, 404, `no dead letter`},
		{"export stream", req{method: "GET", path: "/api/v1/readings/export?from=-1h&source=esp-1", role: RoleTechnician}, 200, "id,seq,source"},
		{"export job", req{method: "POST", path: "/api/v1/exports", body: map[string]any{"format": "ndjson"}, role: RoleTechnician}, 202, `"state"`},
		{"export job invalid", req{method: "POST", path: "/api/v1/exports", body: map[string]any{"format": "xls"}, role: RoleTechnician}, 422, `"field":"format"`},
		{"export missing", req{method: "GET", path: "/api/v1/exports/abc", role: RoleTechnician}, 404, ``},
		{"users", req{method: "GET", path: "/api/v1/users", role: RoleAdmin}, 200, `"technician"`},
		{"user", req{method: "GET", path: "/api/v1/users/viewer", role: RoleAdmin}, 200, `"viewer"`},
		{"user create", req{method: "PUT", path: "/api/v1/users/ana", body: map[string]any{"role": "technician"}, role: RoleAdmin}, 201, `"password"`},
		{"user replace", req{method: "PUT", path: "/api/v1/users/ana", body: map[string]any{"role": "viewer"}, role: RoleAdmin}, 200, `"viewer"`},
		{"user short password", req{method: "PATCH", path: "/api/v1/users/ana", body: map[string]any{"password": "short"}, role: RoleAdmin}, 422, `"field":"password"`},
		{"user bad role", req{method: "PUT", path: "/api/v1/users/bob", body: map[string]any{"role": "boss"}, role: RoleAdmin}, 422, `"field":"role"`},
		{"user bad name", req{method: "PUT", path: "/api/v1/users/a%20b", body: map[string]any{"role": "viewer"}, role: RoleAdmin}, 400, `user name`},
		{"user patch", req{method: "PATCH", path: "/api/v1/users/ana", body: map[string]any{"password": "long enough password"}, role: RoleAdmin}, 200, `"ana"`},
		{"user demote self", req{method: "PATCH", path: "/api/v1/users/admin", body: map[string]any{"role": "viewer"}, role: RoleAdmin}, 409, `own role`},
		{"user delete self", req{method: "DELETE", path: "/api/v1/users/admin", role: RoleAdmin}, 409, `own account`},
		{"user delete", req{method: "DELETE", path: "/api/v1/users/ana", role: RoleAdmin}, 204, ``},
		{"tokens", req{method: "GET", path: "/api/v1/tokens", role: RoleAdmin}, 200, `"kind":"api"`},
		{"token create", req{method: "POST", path: "/api/v1/tokens", body: map[string]any{"name": "backup script", "role": "viewer", "expires_in": "720h"}, role: RoleAdmin}, 201, `"token":"fgt_`},
		{"token create bad", req{method: "POST", path: "/api/v1/tokens", body: map[string]any{"name": "", "role": "viewer", "expires_in": "soon"}, role: RoleAdmin}, 422, `"field":"expires_in"`},
		{"token delete missing", req{method: "DELETE", path: "/api/v1/tokens/nope", role: RoleAdmin}, 404, ``},
		{"login", req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"username": "technician", "password": "technician-password"}}, 200, `"role":"technician"`},
		{"login wrong", req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"username": "technician", "password": "nope"}}, 401, `wrong user name or password`},
		{"login unknown", req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"username": "ghost", "password": "nope"}}, 401, `wrong user name or password`},
		{"login empty", req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{}}, 422, `"field":"username"`},
		{"login not json", req{method: "POST", path: "/api/v1/auth/login", body: "{user"}, 400, `not valid JSON`},
		{"no route", req{method: "GET", path: "/api/v1/nothing"}, 404, `no such resource`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.req)
			if r.StatusCode != tt.want {
				t.Fatalf("%s %s → %d, want %d: %s", tt.req.method, tt.req.path, r.StatusCode, tt.want, r.body)
			}
			if !strings.Contains(string(r.body), tt.has) {
				t.Errorf("body %s lacks %q", r.body, tt.has)
			}
			if r.StatusCode >= 400 && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
				t.Errorf("error with Content-Type %q", r.Header.Get("Content-Type"))
			}
		})
	}
	if e.validated != len(tests)-1 { // all but the route that does not exist
		t.Errorf("%d of %d answers validated against openapi.yaml", e.validated, len(tests)-1)
	}
	if got := e.uplink.retried; len(got) != 1 || got[0] != 1 || e.uplink.retriedAll != 1 {
		t.Errorf("dead letters retried: %v and all %d times, want [1] and once", got, e.uplink.retriedAll)
	}
	if dropped, _, err := e.st.Removed(); err != nil || dropped["dead_letter_discarded"] != 1 {
		t.Errorf("dropped after the discard: %v (%v), want dead_letter_discarded 1", dropped, err)
	}
	if got := e.broker.disconnected; len(got) < 2 || got[len(got)-1] != "esp-2" {
		t.Errorf("devices disconnected: %v, want esp-2 after its password reset and removal", got)
	}
}

// fillOutbox dead-letters the first reading so the dead-letter routes have
// something to show.
func fillOutbox(t *testing.T, st *store.Store) {
	t.Helper()
	if _, _, _, err := st.FormBatch(1, 1, store.BatchLimits{}); err != nil {
		t.Fatal(err)
	}
	if err := st.DeadLetterBatch(1, 422, "bad unit"); err != nil {
		t.Fatal(err)
	}
}

func TestStatusReportsTrouble(t *testing.T) {
	e := newEnv(t, Options{Config: Config{OpenReads: true}})
	e.sensors.health = append(e.sensors.health, sensors.Health{Name: "cellar", Source: "i2c1-0x44", Driver: "sht3x", State: "failing", LastError: "bus: no ACK"})
	e.uplink.status = uplink.Status{State: "offline", LastError: "dial tcp: connection refused", Backlog: 42, OldestUnsent: t0.Add(-time.Hour),
		LastOutage: uplink.Outage{Since: t0.Add(-2 * time.Hour), Until: t0.Add(-2*time.Hour + 39*time.Second), Waiting: 180}}
	var st statusBody
	r := e.do(req{method: "GET", path: "/api/v1/status"})
	r.json(t, &st)
	if st.Health.State != "degraded" || len(st.Health.Reasons) != 2 {
		t.Errorf("health = %+v, want degraded with the sensor and the uplink", st.Health)
	}
	if o := st.Uplink.LastOutage; o == nil || o.Seconds != 39 || o.Waiting != 180 {
		t.Errorf("last outage %+v, want 39 s with 180 readings waiting", o)
	}
	if st.Uplink.Backlog != 42 || st.Uplink.OldestUnsentAge != 3600 || st.Sensors["failing"] != 1 || st.Broker.Clients != 2 {
		t.Errorf("status = %+v", st)
	}
	if !strings.Contains(strings.Join(st.Health.Reasons, "\n"), "sensor cellar is failing: bus: no ACK") {
		t.Errorf("reasons %q do not name the sensor", st.Health.Reasons)
	}
}

// A newcomer without NTP saw "starting" and no reason while every reading
// waited for the clock: a hold is said in words everywhere.
func TestStatusSaysUploadsAreHeld(t *testing.T) {
	e := newEnv(t, Options{Config: Config{OpenReads: true}})
	e.uplink.status = uplink.Status{State: "held", Backlog: 55, HeldForClock: 54}
	e.clock = clock.State{Reason: "the system clock is not synchronised", HoldLeft: 23 * time.Hour}
	why := uplink.HoldWords(54, 23*time.Hour)
	var st statusBody
	e.do(req{method: "GET", path: "/api/v1/status"}).json(t, &st)
	if st.Uplink.State != "held" || st.Uplink.Held != why || st.Uplink.HeldReadings != 54 || st.Uplink.HoldLeft != 23*3600 {
		t.Errorf("uplink = %+v", st.Uplink)
	}
	if st.Health.State != "degraded" || !slices.Contains(st.Health.Reasons, why) {
		t.Errorf("health = %+v, want degraded saying why uploads wait", st.Health)
	}
	m := e.do(req{method: "GET", path: "/metrics", role: RoleViewer})
	for _, want := range []string{"fieldgate_uplink_held_readings 54", "fieldgate_uplink_hold_left_seconds 82800"} {
		if !strings.Contains(string(m.body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
