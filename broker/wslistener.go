package broker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// wsListener serves MQTT over WebSocket. mochi's own accepts any Origin
// (so any web page a technician opens could talk MQTT to the gateway from
// the browser), has no header timeout or size, and admits a socket only
// once it upgraded: the guard never saw the sockets that sit in their HTTP
// handshake. This one counts every socket against the guard's
// pre-CONNECT shares from its first byte, times out and bounds the
// handshake, and refuses browser Origins unless configured (ESP32 clients
// send none).
type wsListener struct {
	id, address string
	origins     []string // browser origins allowed; none by default
	g           *guard
	ln          net.Listener
	srv         *http.Server
	end         atomic.Bool
}

var _ listeners.Listener = (*wsListener)(nil)

// ID returns the listener's id.
func (l *wsListener) ID() string { return l.id }

// Address returns the bound address once Init ran, else the configured one.
func (l *wsListener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.address
}

// Protocol names the transport.
func (l *wsListener) Protocol() string { return "ws" }

// Init binds the address.
func (l *wsListener) Init(*slog.Logger) error {
	ln, err := net.Listen("tcp", l.address)
	if err != nil {
		return err
	}
	l.ln = &handshakeListener{Listener: ln, g: l.g}
	return nil
}

// Serve serves the HTTP handshakes, each upgraded connection handed to
// establish.
func (l *wsListener) Serve(establish listeners.EstablishFn) {
	up := &websocket.Upgrader{Subprotocols: []string{"mqtt"}, HandshakeTimeout: 5 * time.Second, CheckOrigin: l.originAllowed}
	l.srv = &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		MaxHeaderBytes:    4 << 10,
		IdleTimeout:       5 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.New(slog.NewTextHandler(io.Discard, nil)).Handler(), slog.LevelError),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !l.originAllowed(r) {
				l.g.refused("connection refused: MQTT over WebSocket from a browser page", r.RemoteAddr)
				http.Error(w, "browser origins may not use MQTT here", http.StatusForbidden)
				return
			}
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return // Upgrade answered the client
			}
			if hc, ok := c.UnderlyingConn().(*handshakeConn); ok {
				hc.handOver() // the guard counts it from here, in establish
			}
			_ = establish(l.id, &wsConn{Conn: c.UnderlyingConn(), c: c}) // the guard and mochi count and log what matters
		}),
	}
	err := l.srv.Serve(l.ln)
	if err != nil && !l.end.Load() && !errors.Is(err, http.ErrServerClosed) {
		l.g.onError("mqtt websocket listener stopped", err)
	}
}

// originAllowed accepts clients without an Origin (not browsers) and the
// configured origins.
func (l *wsListener) originAllowed(r *http.Request) bool {
	o := r.Header.Get("Origin")
	return o == "" || slices.Contains(l.origins, o)
}

// Close stops the server and closes the listener's clients.
func (l *wsListener) Close(closeClients listeners.CloseFn) {
	if l.end.CompareAndSwap(false, true) && l.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = l.srv.Shutdown(ctx)
	}
	closeClients(l.id)
}

// handshakeListener takes a guard's pre-CONNECT slot for each socket as
// it is accepted, and refuses (closes) one past its address's share.
type handshakeListener struct {
	net.Listener
	g *guard
}

func (l *handshakeListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := sourceAddr(c)
		if ok, why := l.g.admit(addr); !ok {
			l.g.refused(why, addr)
			_ = c.Close()
			continue
		}
		return &handshakeConn{Conn: c, g: l.g, addr: addr}, nil
	}
}

// handshakeConn holds its slot until it is closed or handed over.
type handshakeConn struct {
	net.Conn
	g    *guard
	addr string
	once sync.Once
}

func (c *handshakeConn) handOver() { c.once.Do(func() { c.g.release(c.addr, false) }) }

func (c *handshakeConn) Close() error {
	c.handOver()
	return c.Conn.Close()
}

// wsConn is a WebSocket connection as a net.Conn of MQTT bytes: each
// binary message's payload read in turn, each write one message.
type wsConn struct {
	net.Conn
	c *websocket.Conn
	r io.Reader // the current message's reader, if any
}

func (ws *wsConn) Read(p []byte) (int, error) {
	for {
		if ws.r == nil {
			op, r, err := ws.c.NextReader()
			if err != nil {
				return 0, err
			}
			if op != websocket.BinaryMessage {
				return 0, listeners.ErrInvalidMessage
			}
			ws.r = r
		}
		n, err := ws.r.Read(p)
		if errors.Is(err, io.EOF) {
			ws.r, err = nil, nil
			if n == 0 {
				continue // an empty message, or the end of one: the next
			}
		}
		return n, err
	}
}

func (ws *wsConn) Write(p []byte) (int, error) {
	if err := ws.c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}
