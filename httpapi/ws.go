package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"

	"fieldgate/store"
)

// Live stream timing and limits.
const (
	wsQueue      = 256              // messages queued per client before it counts as too slow
	wsPing       = 30 * time.Second // ping interval
	wsPongWait   = 75 * time.Second // a client silent this long is gone
	wsWriteWait  = 10 * time.Second
	statusPeriod = 5 * time.Second // how often status changes are looked for
	// wsMax bounds live streams, and wsPerAddress one source address's
	// share of them: a stream holds a connection for as long as it lasts.
	wsMax        = 64
	wsPerAddress = 4
)

// wsMessage is one message of the live stream.
type wsMessage struct {
	Type    string       `json:"type"` // reading or status
	Reading *readingBody `json:"reading,omitempty"`
	Status  *statusBody  `json:"status,omitempty"`
}

// hub fans committed readings and status changes out to WebSocket clients.
type hub struct {
	gateway string
	mu      sync.Mutex
	clients map[*wsClient]struct{}
	byAddr  map[string]int // streams per source address
	closed  bool
	wg      sync.WaitGroup
	dropped uint64 // clients closed for being too slow
}

type wsClient struct {
	sources, quantities []string  // filters; empty means all
	addr                string    // the source address
	user, token         string    // who opened it (empty: anonymous, open reads)
	expires             time.Time // when its token expires (zero: never)
	send                chan []byte
	once                sync.Once
	done                chan struct{}
}

func newHub(gateway string) *hub {
	return &hub{gateway: gateway, clients: map[*wsClient]struct{}{}, byAddr: map[string]int{}}
}

func (c *wsClient) wants(r *store.Reading) bool {
	return (len(c.sources) == 0 || slices.Contains(c.sources, r.Source)) &&
		(len(c.quantities) == 0 || slices.Contains(c.quantities, r.Quantity))
}

func (c *wsClient) stop() { c.once.Do(func() { close(c.done) }) }

// deliver queues msg for c, or drops c when its queue is full: a client that
// cannot keep up must not hold the committer (which calls us) back.
func (h *hub) deliver(c *wsClient, msg []byte) {
	select {
	case c.send <- msg:
	default:
		h.dropped++
		delete(h.clients, c)
		h.released(c)
		c.stop()
	}
}

// publishReadings sends committed readings to the clients that want them,
// encoding each reading once.
func (h *hub) publishReadings(rs []store.Reading) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.clients) == 0 {
		return
	}
	msgs := make([][]byte, len(rs))
	for c := range h.clients {
		for i := range rs {
			if !c.wants(&rs[i]) {
				continue
			}
			if msgs[i] == nil {
				b := readingView(h.gateway, rs[i])
				msgs[i], _ = json.Marshal(wsMessage{Type: "reading", Reading: &b}) // plain struct: cannot fail
			}
			h.deliver(c, msgs[i])
		}
	}
}

func (h *hub) broadcast(msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		h.deliver(c, msg)
	}
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// room reports why a stream from addr cannot be added now, or nil.
func (h *hub) room(addr string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return errorf(http.StatusServiceUnavailable, "shutting down")
	case len(h.clients) >= wsMax:
		return errorf(http.StatusServiceUnavailable, "the gateway serves its most live streams (%d); try again later", wsMax)
	case h.byAddr[addr] >= wsPerAddress:
		return errorf(http.StatusTooManyRequests, "this address has %d live streams open; close one first", wsPerAddress)
	}
	return nil
}

func (h *hub) add(c *wsClient) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.clients[c] = struct{}{}
	h.byAddr[c.addr]++
	h.wg.Add(1)
	return true
}

func (h *hub) remove(c *wsClient) {
	h.mu.Lock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		h.released(c)
	}
	h.mu.Unlock()
	c.stop()
}

// released gives back c's share of its address. h.mu is held.
func (h *hub) released(c *wsClient) {
	if h.byAddr[c.addr]--; h.byAddr[c.addr] <= 0 {
		delete(h.byAddr, c.addr)
	}
}

// closeWhere ends the streams for which match is true: their token was
// revoked, or their user's credentials changed.
func (h *hub) closeWhere(match func(*wsClient) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		if match(c) {
			delete(h.clients, c)
			h.released(c)
			c.stop()
		}
	}
}

// close ends every stream and waits for their goroutines.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	for c := range h.clients {
		c.stop()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// ws upgrades to a WebSocket and streams readings (filtered by the source
// and quantity parameters, comma-separated) and status changes.
func (s *Server) ws(c *gin.Context) {
	addr := remoteIPString(c.Request.RemoteAddr)
	if err := s.hub.room(addr); err != nil {
		s.fail(c, err)
		return
	}
	up := websocket.Upgrader{
		ReadBufferSize: 1024, WriteBufferSize: 4096, HandshakeTimeout: 5 * time.Second,
		CheckOrigin: s.sameOriginOrAllowed,
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			s.fail(c, errorf(status, "websocket: %v", reason))
		},
	}
	conn, err := up.Upgrade(c.Writer, c.Request, nil)
	if err != nil {
		return // Upgrade answered the client
	}
	p := who(c)
	cl := &wsClient{sources: splitList(c.Query("source")), quantities: splitList(c.Query("quantity")), addr: addr,
		user: p.User, token: p.Token, expires: p.Expires, send: make(chan []byte, wsQueue), done: make(chan struct{})}
	if !s.hub.add(cl) {
		_ = conn.Close() // shutting down
		return
	}
	if st, err := s.status(); err == nil {
		if msg, err := json.Marshal(wsMessage{Type: "status", Status: &st}); err == nil {
			cl.send <- msg // the queue is empty: this cannot block
		}
	}
	go s.wsRead(conn, cl)
	s.wsWrite(conn, cl)
}

// wsRead reads (and discards) client messages so pongs and closes are seen.
func (s *Server) wsRead(conn *websocket.Conn, cl *wsClient) {
	defer s.hub.remove(cl)
	conn.SetReadLimit(4096)
	_ = conn.SetReadDeadline(time.Now().Add(wsPongWait)) // errors surface in ReadMessage
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(wsPongWait)) })
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			return
		}
	}
}

// wsWrite sends queued messages and pings until the client goes.
func (s *Server) wsWrite(conn *websocket.Conn, cl *wsClient) {
	defer s.hub.wg.Done()
	defer func() { _ = conn.Close() }() // the connection is done either way
	ping := time.NewTicker(wsPing)
	defer ping.Stop()
	for {
		select {
		case msg := <-cl.send:
			_ = conn.SetWriteDeadline(time.Now().Add(wsWriteWait)) // a failed write reports it
			if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
				s.hub.remove(cl)
				return
			}
		case <-ping.C:
			if !s.stillValid(cl) {
				s.hub.remove(cl)
				_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "token expired or revoked"), time.Now().Add(time.Second))
				return
			}
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsWriteWait)); err != nil {
				s.hub.remove(cl)
				return
			}
		case <-cl.done:
			_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye"), time.Now().Add(time.Second))
			return
		}
	}
}

// stillValid reports whether the token a stream was opened with still
// holds: not expired, not revoked, its user still there. Revocations
// through the API close streams at once; this catches expiry and changes
// made elsewhere (the fieldgate user command), at every ping.
func (s *Server) stillValid(cl *wsClient) bool {
	if cl.token == "" {
		return true // anonymous: open reads
	}
	if !cl.expires.IsZero() && !s.opts.Now().Before(cl.expires) {
		return false
	}
	t, err := s.st.Token(cl.token)
	if err != nil || t.Expired(s.opts.Now()) {
		return false
	}
	_, err = s.st.User(t.User)
	return err == nil
}

// watchStatus broadcasts the status whenever its verdict, the uplink's
// state or who is online changes, while anyone listens.
func (s *Server) watchStatus(stop <-chan struct{}) {
	t := time.NewTicker(statusPeriod)
	defer t.Stop()
	last := ""
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if s.hub.count() == 0 {
			last = ""
			continue
		}
		st, err := s.status()
		if err != nil {
			continue
		}
		key, _ := json.Marshal([]any{st.Health, st.Uplink.State, st.Broker.Clients, st.Sensors, st.Clock, st.Store.Error})
		if string(key) == last {
			continue
		}
		last = string(key)
		if msg, err := json.Marshal(wsMessage{Type: "status", Status: &st}); err == nil {
			s.hub.broadcast(msg)
		}
	}
}

// sameOriginOrAllowed accepts browsers from one of the gateway's own names
// (see hostGuard: comparing Origin with Host is no check once DNS
// rebinding made both the attacker's name) or a configured CORS origin,
// and non-browser clients (no Origin).
func (s *Server) sameOriginOrAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	return (strings.EqualFold(u.Host, r.Host) && s.hosts.allowed(u.Host)) || slices.Contains(s.opts.CORSOrigins, origin)
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
