package httpapi

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"fieldgate/store"
)

// login logs user in (password user+"-password") and returns its bearer.
func (e *env) login(t *testing.T, user string) string {
	t.Helper()
	r := e.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"username": user, "password": user + "-password"}})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("login %s: %d %s", user, r.StatusCode, r.body)
	}
	var tok tokenResponse
	r.json(t, &tok)
	return tok.Token
}

// as makes r with bearer instead of a role's token.
func (e *env) as(bearer string, r req) *resp {
	if r.header == nil {
		r.header = map[string]string{}
	}
	r.header["Authorization"] = "Bearer " + bearer
	return e.do(r)
}

// streamAs opens a live stream with bearer and reads its first message.
func streamAs(t *testing.T, e *env, bearer string) *websocket.Conn {
	t.Helper()
	c := dialWS(t, e, "access_token="+bearer, nil)
	readMsg(t, c)
	return c
}

// closed reports whether the server closed the stream.
func closed(c *websocket.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return !strings.Contains(err.Error(), "timeout")
		}
	}
}

// TestNewPasswordRevokesSessionsAndStreams: after a technician's password
// is reset, the old session no longer creates a device (it did, and got
// the device's MQTT password), and its live stream is closed.
func TestNewPasswordRevokesSessionsAndStreams(t *testing.T) {
	e := newEnv(t, Options{})
	e.addUser("tess", RoleTechnician)
	old := e.login(t, "tess")
	stream := streamAs(t, e, old)
	r := e.do(req{method: "PATCH", path: "/api/v1/users/tess", body: map[string]any{"reset_password": true}, role: RoleAdmin})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("reset: %d %s", r.StatusCode, r.body)
	}
	if r := e.as(old, req{method: "PUT", path: "/api/v1/devices/esp-9", body: map[string]any{}}); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the old session after a password reset: %d %s", r.StatusCode, r.body)
	}
	if !closed(stream) {
		t.Error("the old session's live stream is still open")
	}
}

// TestLiveStreamEndsWithItsToken: logout, revocation, the user's removal
// and expiry each end the live streams the token opened.
func TestLiveStreamEndsWithItsToken(t *testing.T) {
	e := newEnv(t, Options{Config: Config{SessionTTL: time.Hour}})
	e.addUser("vic", RoleViewer)
	cases := []struct {
		name string
		end  func(bearer string)
	}{
		{"logout", func(b string) { e.as(b, req{method: "POST", path: "/api/v1/auth/logout"}) }},
		{"revoke", func(b string) {
			id := strings.SplitN(strings.TrimPrefix(b, tokenPrefix), "_", 2)[0]
			e.do(req{method: "DELETE", path: "/api/v1/tokens/" + id, role: RoleAdmin})
		}},
		{"expiry", func(string) {
			e.now = e.now.Add(2 * time.Hour) // checked at the next ping
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bearer := e.login(t, "vic")
			stream := streamAs(t, e, bearer)
			c.end(bearer)
			if c.name == "expiry" {
				e.srv.hub.mu.Lock()
				var cl *wsClient
				for x := range e.srv.hub.clients {
					cl = x
				}
				e.srv.hub.mu.Unlock()
				if e.srv.stillValid(cl) {
					t.Fatal("an expired token's stream is still valid")
				}
				return
			}
			if !closed(stream) {
				t.Errorf("the live stream survived the %s", c.name)
			}
		})
	}
	bearer := e.login(t, "vic")
	stream := streamAs(t, e, bearer)
	e.do(req{method: "DELETE", path: "/api/v1/users/vic", role: RoleAdmin})
	if !closed(stream) {
		t.Error("the live stream survived the user's removal")
	}
}

// TestTokensCannotOutliveTheirMaker: a session that expires in an hour
// used to mint an API token that never expires.
func TestTokensCannotOutliveTheirMaker(t *testing.T) {
	e := newEnv(t, Options{Config: Config{SessionTTL: time.Hour}})
	e.addUser("ada", RoleAdmin)
	session := e.login(t, "ada")
	for _, expires := range []string{"", "8760h"} {
		r := e.as(session, req{method: "POST", path: "/api/v1/tokens", body: map[string]string{"name": "script", "role": "viewer", "expires_in": expires}})
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("create: %d %s", r.StatusCode, r.body)
		}
		var tok tokenResponse
		r.json(t, &tok)
		if tok.ExpiresAt == nil || tok.ExpiresAt.After(t0.Add(time.Hour)) {
			t.Errorf("expires_in %q: the token expires at %v, after its maker's session", expires, tok.ExpiresAt)
		}
	}
}

// TestLastAdminAndOwnRole: PUT cannot lower the caller's own role (PATCH
// could not, PUT could), and the last admin can be neither demoted nor
// removed.
func TestLastAdminAndOwnRole(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.do(req{method: "PUT", path: "/api/v1/users/admin", body: map[string]string{"role": "viewer"}, role: RoleAdmin})
	if r.StatusCode != http.StatusConflict {
		t.Fatalf("an admin lowering its own role by PUT: %d %s", r.StatusCode, r.body)
	}
	e.addUser("deputy", RoleAdmin)
	deputy := e.login(t, "deputy")
	if r := e.as(deputy, req{method: "PATCH", path: "/api/v1/users/admin", body: map[string]string{"role": "viewer"}}); r.StatusCode != http.StatusOK {
		t.Fatalf("demoting an admin while another remains: %d %s", r.StatusCode, r.body)
	}
	for _, r := range []*resp{
		e.as(deputy, req{method: "PATCH", path: "/api/v1/users/deputy", body: map[string]string{"role": "technician"}}),
		e.as(deputy, req{method: "DELETE", path: "/api/v1/users/deputy"}),
	} {
		if r.StatusCode != http.StatusConflict {
			t.Errorf("the last admin changed itself away: %d %s", r.StatusCode, r.body)
		}
	}
}

// TestExportsBelongToTheirCreator: another technician can neither see nor
// download someone's export; an admin can.
func TestExportsBelongToTheirCreator(t *testing.T) {
	e := newEnv(t, Options{})
	e.append("esp-1", "temperature", 10)
	e.addUser("ted", RoleTechnician)
	e.addUser("tom", RoleTechnician)
	ted, tom := e.login(t, "ted"), e.login(t, "tom")
	r := e.as(ted, req{method: "POST", path: "/api/v1/exports", body: map[string]string{"format": "csv"}})
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("export: %d %s", r.StatusCode, r.body)
	}
	var j struct{ ID string }
	r.json(t, &j)
	for _, path := range []string{"/api/v1/exports/" + j.ID, "/api/v1/exports/" + j.ID + "/file"} {
		if r := e.as(tom, req{method: "GET", path: path}); r.StatusCode != http.StatusNotFound {
			t.Errorf("another technician GET %s: %d", path, r.StatusCode)
		}
	}
	if r := e.as(ted, req{method: "GET", path: "/api/v1/exports/" + j.ID}); r.StatusCode != http.StatusOK {
		t.Errorf("its creator: %d", r.StatusCode)
	}
	if r := e.do(req{method: "GET", path: "/api/v1/exports/" + j.ID, role: RoleAdmin}); r.StatusCode != http.StatusOK {
		t.Errorf("an admin: %d", r.StatusCode)
	}
}

// TestPutKeepsTheGeneratedPasswordMark: replacing a user without a new
// password keeps the mark that its password is the generated one (so a
// start need not compare it again); a new password leaves the mark stale.
func TestPutKeepsTheGeneratedPasswordMark(t *testing.T) {
	e := newEnv(t, Options{})
	e.addUser("ada", RoleAdmin)
	if err := e.st.UpdateUser("ada", func(u *store.User) error { u.InitialHash = u.PasswordHash; return nil }); err != nil {
		t.Fatal(err)
	}
	check := func(what string, marked bool) {
		t.Helper()
		u, err := e.st.User("ada")
		if err != nil {
			t.Fatal(err)
		}
		if got := len(u.InitialHash) > 0 && bytes.Equal(u.InitialHash, u.PasswordHash); got != marked {
			t.Errorf("%s: the password marked as the generated one: %v, want %v", what, got, marked)
		}
	}
	if r := e.do(req{method: "PUT", path: "/api/v1/users/ada", body: map[string]string{"role": "admin"}, role: RoleAdmin}); r.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.StatusCode, r.body)
	}
	check("a PUT without a password", true)
	if r := e.do(req{method: "PUT", path: "/api/v1/users/ada", body: map[string]string{"role": "admin", "password": "a much longer new password"}, role: RoleAdmin}); r.StatusCode != http.StatusOK {
		t.Fatalf("PUT with a password: %d %s", r.StatusCode, r.body)
	}
	check("a PUT with a new password", false)
}
