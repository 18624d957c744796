package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// TestDNSRebindingIsRefused: a page a technician opens resolves its own
// name to the gateway; the browser then sends that name as Host and as the
// WebSocket's Origin, and with open reads the page could read everything.
// Only the gateway's own names are served.
func TestDNSRebindingIsRefused(t *testing.T) {
	e := newEnv(t, Options{Config: Config{OpenReads: true, Hosts: []string{"gw.example.org"}}})
	get := func(host string) int {
		r, err := http.NewRequest("GET", e.ts.URL+"/api/v1/status", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Host = host
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	port := e.ts.Listener.Addr().String()[strings.LastIndex(e.ts.Listener.Addr().String(), ":"):]
	for host, want := range map[string]int{
		"evil.example" + port:          http.StatusMisdirectedRequest,
		"evil.example":                 http.StatusMisdirectedRequest,
		"127.0.0.1" + port:             http.StatusOK,
		"localhost" + port:             http.StatusOK,
		"gw.example.org":               http.StatusOK,
		"GW.Example.Org." + port:       http.StatusOK,
		"[::1]" + port:                 http.StatusOK,
		"10.255.255.254.nip.io" + port: http.StatusMisdirectedRequest,
	} {
		if got := get(host); got != want {
			t.Errorf("Host %s: %d, want %d", host, got, want)
		}
	}
	// The live stream: an Origin that is not one of the gateway's names is
	// refused even when the Host is.
	u := "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/api/v1/ws"
	if _, res, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {"http://evil.example" + port}}); err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("a live stream from a foreign origin: %v (%v)", err, res)
	}
	c, _, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {e.ts.URL}})
	if err != nil {
		t.Fatalf("a live stream from the gateway's own page: %v", err)
	}
	c.Close()
}
