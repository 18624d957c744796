package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"fieldgate/store"
)

func dialWS(t *testing.T, e *env, query string, header http.Header) *websocket.Conn {
	t.Helper()
	u := "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/api/v1/ws?" + query
	c, res, err := websocket.DefaultDialer.Dial(u, header)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("dial %s: %v (%d)", u, err, status)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func readMsg(t *testing.T, c *websocket.Conn) wsMessage {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var m wsMessage
	if err := c.ReadJSON(&m); err != nil {
		t.Fatalf("read: %v", err)
	}
	return m
}

func TestWebSocketStream(t *testing.T) {
	e := newEnv(t, Options{Config: Config{OpenReads: true}})
	c := dialWS(t, e, "source=esp-1&quantity=temperature", nil)
	if m := readMsg(t, c); m.Type != "status" || m.Status == nil || m.Status.GatewayID != e.st.GatewayID() {
		t.Fatalf("first message %+v, want the status", m)
	}
	rs := []store.Reading{
		{Seq: 7, Source: "esp-2", Quantity: "temperature", Value: 1, Unit: "Cel", Time: t0},
		{Seq: 8, Source: "esp-1", Quantity: "humidity", Value: 2, Unit: "%RH", Time: t0},
		{Seq: 9, Source: "esp-1", Quantity: "temperature", Value: 21.5, Unit: "Cel", Time: t0},
	}
	e.srv.Committed(rs, time.Millisecond)
	m := readMsg(t, c)
	if m.Type != "reading" || m.Reading == nil || m.Reading.Seq != 9 || m.Reading.Value != 21.5 || m.Reading.ID != e.st.GatewayID()+":9" {
		t.Fatalf("message %+v, want reading 9 only (the filter drops the others)", m)
	}
}

func TestWebSocketNeedsTokenWhenReadsAreClosed(t *testing.T) {
	e := newEnv(t, Options{})
	u := "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/api/v1/ws"
	if _, res, err := websocket.DefaultDialer.Dial(u, nil); err == nil || res == nil || res.StatusCode != 401 {
		t.Fatalf("dial without a token: %v", err)
	}
	c := dialWS(t, e, "access_token="+e.tokens[RoleViewer], nil)
	if m := readMsg(t, c); m.Type != "status" {
		t.Errorf("first message %+v", m)
	}
	// A page from another origin is refused.
	u += "?access_token=" + e.tokens[RoleViewer]
	if _, res, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {"http://evil.example"}}); err == nil || res.StatusCode != 403 {
		t.Errorf("foreign origin: %v", err)
	}
}

// TestSlowClientIsDropped overflows a client's queue: the client is
// dropped and the committer's callback returns without waiting for it.
func TestSlowClientIsDropped(t *testing.T) {
	h := newHub("fg-test")
	slow := &wsClient{send: make(chan []byte, wsQueue), done: make(chan struct{})}
	fast := &wsClient{sources: []string{"other"}, send: make(chan []byte, wsQueue), done: make(chan struct{})}
	if !h.add(slow) || !h.add(fast) {
		t.Fatal("hub refused clients")
	}
	rs := make([]store.Reading, wsQueue+1)
	for i := range rs {
		rs[i] = store.Reading{Seq: uint64(i + 1), Source: "s", Quantity: "q", Unit: "Cel", Time: t0}
	}
	h.publishReadings(rs) // nobody reads slow.send: the last reading overflows it
	select {
	case <-slow.done:
	default:
		t.Fatal("the slow client was not dropped")
	}
	if n := h.count(); n != 1 || len(fast.send) != 0 {
		t.Errorf("%d clients left (want the filtered one), %d messages for it", n, len(fast.send))
	}
	if h.dropped != 1 {
		t.Errorf("dropped = %d", h.dropped)
	}
}
