package httpapi

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLoginGuessingIsThrottled: 13 wrong logins a second went on for ever,
// each one a bcrypt. Now an address gets five, then 429 with Retry-After —
// without a bcrypt, even for the right password — for a wait that doubles
// with every further failure; once it passes the right password works and
// the count starts over.
func TestLoginGuessingIsThrottled(t *testing.T) {
	e := newEnv(t, Options{})
	login := func(pw string) *resp {
		return e.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"username": "technician", "password": pw}})
	}
	for i := range 5 {
		if r := login("guess-" + strconv.Itoa(i)); r.StatusCode != 401 {
			t.Fatalf("wrong login %d: %d %s", i+1, r.StatusCode, r.body)
		}
	}
	r := login("technician-password")
	if r.StatusCode != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("after five failures: %d (Retry-After %q) %s, want 429 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"), r.body)
	}
	e.now = e.now.Add(2 * time.Second)
	if r := login("guess-6"); r.StatusCode != 401 {
		t.Fatalf("after the wait: %d %s", r.StatusCode, r.body)
	}
	if r := login("technician-password"); r.StatusCode != 429 {
		t.Fatalf("the wait did not double: %d %s", r.StatusCode, r.body)
	}
	e.now = e.now.Add(3 * time.Second)
	if r := login("technician-password"); r.StatusCode != 200 {
		t.Fatalf("the right password after the wait: %d %s", r.StatusCode, r.body)
	}
	if r := login("guess-7"); r.StatusCode != 401 {
		t.Fatalf("a success resets the count: %d %s", r.StatusCode, r.body)
	}
	m := e.do(req{method: "GET", path: "/metrics", role: RoleViewer})
	for _, want := range []string{"fieldgate_login_failures_total 7", "fieldgate_login_throttled_total 2"} {
		if !strings.Contains(string(m.body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
