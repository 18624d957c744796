package httpapi

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ConnLimits bound the API's connections: one host on the LAN must not be
// able to take the slots every technician, and the health check, need.
type ConnLimits struct {
	// Max bounds open connections (WebSocket streams included).
	Max int
	// PerAddress is one source address's share. Default Max/8, at least 4.
	PerAddress int
}

// ConnStats counts what the connection limits did.
type ConnStats struct {
	Open                  int
	RefusedCap, RefusedAt uint64 // refused at the cap, at an address's share
	IdleClosed            uint64 // idle keep-alive connections closed near the cap
	// LastRefused is when a connection was last refused, and TopAddress
	// the address holding the most connections then.
	LastRefused time.Time
	TopAddress  string
	TopOpen     int
}

// connLimiter is a listener that never blocks in Accept at its limits: a
// connection past the cap or its address's share is closed at once, so the
// accept loop keeps draining the kernel's backlog and other clients are
// served instead of queueing behind an attacker's idle sockets (which
// netutil.LimitListener made them do).
type connLimiter struct {
	net.Listener
	lim ConnLimits
	now func() time.Time

	mu     sync.Mutex
	open   int
	byAddr map[string]int
	last   time.Time
	top    string
	topN   int

	refusedCap, refusedAddr, idleClosed atomic.Uint64
}

// Listen wraps ln with the API's connection limits; serve it with
// HTTPServer's server, whose ConnState closes idle connections when the
// API is near its cap.
func (s *Server) Listen(ln net.Listener, lim ConnLimits) net.Listener {
	if lim.PerAddress <= 0 {
		lim.PerAddress = max(4, lim.Max/8)
	}
	l := &connLimiter{Listener: ln, lim: lim, now: s.opts.Now, byAddr: map[string]int{}}
	s.conns.Store(l)
	return l
}

// Accept returns the next connection within the limits.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host := remoteIP(c.RemoteAddr())
		if l.take(host) {
			return &limitedConn{Conn: c, l: l, host: host}, nil
		}
		_ = c.Close() // refused: counted by take
	}
}

// take counts a new connection from host, or refuses it.
func (l *connLimiter) take(host string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.open >= l.lim.Max:
		l.refusedCap.Add(1)
	case l.byAddr[host] >= l.lim.PerAddress:
		l.refusedAddr.Add(1)
	default:
		l.open++
		l.byAddr[host]++
		return true
	}
	l.last = l.now()
	l.top, l.topN = "", 0
	for h, n := range l.byAddr {
		if n > l.topN {
			l.top, l.topN = h, n
		}
	}
	return false
}

func (l *connLimiter) give(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byAddr[host]--; l.byAddr[host] <= 0 {
		delete(l.byAddr, host)
	}
}

// crowded reports whether the API holds three quarters of its cap.
func (l *connLimiter) crowded() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open*4 >= l.lim.Max*3
}

// stats returns the counters.
func (l *connLimiter) stats() ConnStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return ConnStats{Open: l.open, RefusedCap: l.refusedCap.Load(), RefusedAt: l.refusedAddr.Load(),
		IdleClosed: l.idleClosed.Load(), LastRefused: l.last, TopAddress: l.top, TopOpen: l.topN}
}

// limitedConn gives its slot back when closed (by the server, or by a
// WebSocket stream that hijacked it).
type limitedConn struct {
	net.Conn
	l    *connLimiter
	host string
	once sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.give(c.host) })
	return c.Conn.Close()
}

// connState closes a keep-alive connection as soon as it goes idle while
// the API is crowded: idle sockets must not keep others out.
func (s *Server) connState(c net.Conn, st http.ConnState) {
	if st != http.StateIdle {
		return
	}
	if l := s.conns.Load(); l != nil && l.crowded() {
		l.idleClosed.Add(1)
		_ = c.Close()
	}
}

// ConnStats returns what the connection limits did (zero before Listen).
func (s *Server) ConnStats() ConnStats {
	if l := s.conns.Load(); l != nil {
		return l.stats()
	}
	return ConnStats{}
}

// remoteIP is the host part of a connection's remote address.
func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return remoteIPString(a.String())
}

// remoteIPString is the host part of a remote address such as
// http.Request.RemoteAddr: never a header a client wrote.
func remoteIPString(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}
