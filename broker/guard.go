package broker

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/sys/unix"
)

// Limits protect the broker from sockets that never become clients and
// from packets that are too large or malformed. DefaultConfig gives the
// defaults.
type Limits struct {
	// MaxPacketSize bounds a packet's remaining length.
	MaxPacketSize int `yaml:"max_packet_size" config:"size"`
	// MaxConnections bounds connected clients.
	MaxConnections int `yaml:"max_connections"`
	// MaxPending bounds sockets that have not sent CONNECT yet.
	MaxPending int `yaml:"max_pending"`
	// MaxPendingPerAddress and MaxConnectionsPerAddress are one source
	// address's share of those: one host cannot take the slots every
	// device needs. Defaults MaxPending/8 (at least 2) and
	// MaxConnections/4 (at least 4).
	MaxPendingPerAddress     int `yaml:"-"`
	MaxConnectionsPerAddress int `yaml:"-"`
	// ConnectTimeout closes a socket that has not sent a valid CONNECT in
	// time.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// MaxKeepalive is written into a CONNECT whose keepalive is 0 or
	// larger, so that a silent client is dropped after 1.5 × it.
	MaxKeepalive time.Duration `yaml:"max_keepalive"`
}

// withDefaults fills every zero limit from d, and the per-address shares
// from the totals.
func (l Limits) withDefaults(d Limits) Limits {
	if l.MaxPacketSize <= 0 {
		l.MaxPacketSize = d.MaxPacketSize
	}
	if l.MaxConnections <= 0 {
		l.MaxConnections = d.MaxConnections
	}
	if l.MaxPending <= 0 {
		l.MaxPending = d.MaxPending
	}
	if l.MaxPendingPerAddress <= 0 {
		l.MaxPendingPerAddress = max(2, l.MaxPending/8)
	}
	if l.MaxConnectionsPerAddress <= 0 {
		l.MaxConnectionsPerAddress = max(4, l.MaxConnections/4)
	}
	if l.ConnectTimeout <= 0 {
		l.ConnectTimeout = d.ConnectTimeout
	}
	if l.MaxKeepalive <= 0 {
		l.MaxKeepalive = d.MaxKeepalive
	}
	return l
}

// GuardStats counts what the guard turned away.
type GuardStats struct {
	Malformed       uint64 // connections closed for a malformed packet
	Oversized       uint64 // … for a packet over the size limit
	ConnectTimeouts uint64 // … for sending no CONNECT in time
	Refused         uint64 // sockets refused at a connection limit
	AcceptErrors    uint64 // accepts that failed and were retried (out of file descriptors)
	Pending, Active int64  // sockets before and after CONNECT, now
}

// guard is shared by all listeners: limits and counters.
type guard struct {
	lim     Limits
	onError func(reason string, err error, attrs ...any) // rate-limited logging, by the caller

	mu     sync.Mutex
	byAddr map[string]*addrSlots // sockets per source address

	pending, active                                        atomic.Int64
	malformed, oversized, timeouts, refusedCnt, acceptErrs atomic.Uint64
}

// addrSlots counts one source address's sockets before and after CONNECT.
type addrSlots struct{ pending, active int }

func newGuard(lim Limits, onError func(string, error, ...any)) *guard {
	return &guard{lim: lim.withDefaults(DefaultConfig().Limits), onError: onError, byAddr: map[string]*addrSlots{}}
}

// admit takes a pending slot for a socket from addr, or reports why not.
func (g *guard) admit(addr string) (ok bool, why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.byAddr[addr]
	if a == nil {
		a = &addrSlots{}
	}
	switch {
	case g.pending.Load() >= int64(g.lim.MaxPending):
		return false, "connection refused: every pre-CONNECT slot is taken"
	case g.active.Load() >= int64(g.lim.MaxConnections):
		return false, "connection refused at the connection limit"
	case a.pending >= g.lim.MaxPendingPerAddress:
		return false, "connection refused: the address holds its share of pre-CONNECT slots"
	case a.pending+a.active >= g.lim.MaxConnectionsPerAddress:
		return false, "connection refused: the address holds its share of connections"
	}
	a.pending++
	g.byAddr[addr] = a
	g.pending.Add(1)
	return true, ""
}

// promote moves a socket of addr from pending to active.
func (g *guard) promote(addr string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if a := g.byAddr[addr]; a != nil {
		a.pending--
		a.active++
	}
	g.pending.Add(-1)
	g.active.Add(1)
}

// release gives back a socket's slot, pending or active.
func (g *guard) release(addr string, active bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.byAddr[addr]
	if active {
		g.active.Add(-1)
		if a != nil {
			a.active--
		}
	} else {
		g.pending.Add(-1)
		if a != nil {
			a.pending--
		}
	}
	if a != nil && a.pending == 0 && a.active == 0 {
		delete(g.byAddr, addr) // the map holds only addresses with sockets
	}
}

// refused counts a socket refused for why, and logs it (rate-limited).
func (g *guard) refused(why, addr string) {
	g.refusedCnt.Add(1)
	g.onError(why, nil, "addr", addr)
}

// sourceAddr is the host part of a connection's remote address.
func sourceAddr(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

func (g *guard) stats() GuardStats {
	return GuardStats{
		Malformed: g.malformed.Load(), Oversized: g.oversized.Load(), ConnectTimeouts: g.timeouts.Load(),
		Refused: g.refusedCnt.Load(), AcceptErrors: g.acceptErrs.Load(), Pending: g.pending.Load(), Active: g.active.Load(),
	}
}

// guardedListener wraps a mochi listener so that every connection passes
// through the guard.
type guardedListener struct {
	listeners.Listener
	g      *guard
	server *mqtt.Server // whose clients Close disconnects
}

// Close stops the listener and disconnects its clients. mochi's own way
// (Clients.GetByListener) takes the clients' read lock twice, and deadlocks
// when a disconnecting client's Delete queues for the write lock in
// between: a shutdown racing a device's disconnect would hang forever and
// never commit the queue. A snapshot from GetAll takes the lock once.
func (l *guardedListener) Close(listeners.CloseFn) {
	id := l.ID()
	l.Listener.Close(func(string) {
		for _, cl := range l.server.Clients.GetAll() {
			if cl.Net.Listener == id && !cl.Closed() {
				_ = l.server.DisconnectClient(cl, packets.ErrServerShuttingDown) // it may be gone already
			}
		}
	})
}

// Serve admits connections within the limits and hands mochi a
// guardConn, which only ever delivers whole, validated packets.
func (l *guardedListener) Serve(establish listeners.EstablishFn) {
	l.Listener.Serve(func(id string, c net.Conn) error {
		g := l.g
		addr := sourceAddr(c)
		if ok, why := g.admit(addr); !ok {
			g.refused(why, addr)
			_ = c.Close() // refused: nothing to report to the peer
			return nil
		}
		gc := newGuardConn(c, g, addr)
		_ = c.SetDeadline(time.Now().Add(g.lim.ConnectTimeout)) // mochi sets its own after CONNECT
		err := establish(id, gc)
		gc.finish()
		if gc.rejected() || !gc.received {
			// Counted and logged by the guard, or a socket that closed
			// without a byte (a health probe, a port scan): nothing to log.
			return nil
		}
		return err
	})
}

// guardConn validates the client's byte stream packet by packet: mochi reads
// only packets the frameChecker accepted, whole. On the first bad packet the
// connection is closed.
type guardConn struct {
	net.Conn
	g    *guard
	addr string // the source address whose slot it holds
	fc   frameChecker

	in, out  []byte    // raw bytes not yet checked; checked bytes not yet read
	buf      [512]byte // a sensor's packets are small; larger ones take several reads
	received bool      // any byte arrived
	err      error
	state    int // 0 pending, 1 active, 2 done
	bad      atomic.Bool
	id       atomic.Pointer[identity] // the admitted client's (see hook.identity)
	mu       sync.Mutex               // guards state against finish racing the reader

	wmu    sync.Mutex // one writer at a time: mochi's, tryWrite's, or reject's DISCONNECT
	unsent []byte     // the tail of a packet tryWrite began; written before anything else
	// raw is the plain TCP socket's, for tryWrite (nil for TLS and
	// WebSocket, which frame what they send); write is rawWrite, made
	// once. All under wmu.
	raw   syscall.RawConn
	write func(fd uintptr) bool
	p     []byte
	n     int
}

// rawWrite writes c.p to the socket fd once, without waiting, and notes
// in c.n how much it took. c.wmu is held.
func (c *guardConn) rawWrite(fd uintptr) bool {
	c.n, _ = unix.Write(int(fd), c.p) // the socket is non-blocking: EAGAIN when full
	return true                       // never wait for it
}

// newGuardConn wraps c, a connection from addr, which holds a pending slot.
func newGuardConn(c net.Conn, g *guard, addr string) *guardConn {
	gc := &guardConn{Conn: c, g: g, addr: addr, fc: frameChecker{maxSize: g.lim.MaxPacketSize, maxKeep: uint16(g.lim.MaxKeepalive / time.Second)}}
	if tc, ok := c.(*net.TCPConn); ok {
		gc.raw, _ = tc.SyscallConn() // nil on an error: tryWrite declines
		gc.write = gc.rawWrite
	}
	return gc
}

// Write writes what mochi sends.
func (c *guardConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.flushUnsent(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// flushUnsent writes what tryWrite left, waiting for the socket. If that
// fails the connection is closed: the packet begun cannot be finished, and
// nothing may follow its head. c.wmu is held.
func (c *guardConn) flushUnsent() error {
	if len(c.unsent) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.unsent)
	c.unsent = c.unsent[:0]
	if err != nil {
		_ = c.Conn.Close()
	}
	return err
}

// tryWrite writes the packet p if that cannot block, and reports whether
// it did: nobody else is writing, the connection is a plain TCP socket
// (TLS and WebSocket frame what they send), and the socket buffer takes
// some of p at once. A tail the buffer did not take is written by a
// goroutine of its own, waiting for the socket, before anything else is.
// Used by a goroutine that must not wait on one peer (the commit's,
// acknowledging every connection it holds).
func (c *guardConn) tryWrite(p []byte) bool {
	if c.raw == nil || !c.wmu.TryLock() {
		return false
	}
	defer c.wmu.Unlock()
	if len(c.unsent) > 0 {
		return false
	}
	c.p, c.n = p, 0
	err := c.raw.Write(c.write)
	n := c.n
	c.p = nil
	if err != nil || n <= 0 {
		return false
	}
	if n < len(p) {
		c.unsent = append(c.unsent, p[n:]...)
		go func() {
			c.wmu.Lock()
			defer c.wmu.Unlock()
			_ = c.flushUnsent()
		}()
	}
	return true
}

// Read returns validated bytes only.
func (c *guardConn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		c.err = c.next()
	}
	n := copy(p, c.out)
	if n == len(c.out) {
		c.out = c.out[:0] // the next packet reuses the buffer
	} else {
		c.out = c.out[n:]
	}
	return n, nil
}

// next reads until one whole packet is buffered, checks it and moves it to
// out.
func (c *guardConn) next() error {
	for {
		hdr, rem, need, err := c.fc.header(c.in)
		if err != nil {
			return c.reject(err)
		}
		if need == 0 && len(c.in) >= hdr+rem {
			pkt := c.in[:hdr+rem]
			wasConnected := c.fc.connected
			if err := c.fc.check(pkt, hdr); err != nil {
				return c.reject(err)
			}
			c.out = append(c.out[:0], pkt...)
			c.in = append(c.in[:0], c.in[hdr+rem:]...)
			if !wasConnected {
				c.promote()
			}
			return nil
		}
		n, err := c.Conn.Read(c.buf[:])
		c.in = append(c.in, c.buf[:n]...)
		c.received = c.received || n > 0
		if err != nil {
			var ne net.Error
			if !c.fc.connected && errors.As(err, &ne) && ne.Timeout() {
				c.g.timeouts.Add(1)
				c.bad.Store(true)
				c.g.onError("socket sent no CONNECT in time; closed", nil, "addr", c.addr)
			}
			return err
		}
	}
}

// reject counts a bad packet, closes the connection and returns the error
// mochi will see.
func (c *guardConn) reject(err error) error {
	if c.bad.CompareAndSwap(false, true) {
		if errors.Is(err, ErrTooLarge) {
			c.g.oversized.Add(1)
		} else {
			c.g.malformed.Add(1)
		}
		c.g.onError("malformed packet; connection closed", err, "addr", c.addr)
		c.disconnect(err)
	}
	_ = c.Conn.Close() // the error below is what matters
	return err
}

// disconnect tells an MQTT 5 client why it is being closed, as the
// specification says a server should before it closes: 0x95 packet too
// large, 0x94 topic alias invalid, else 0x81 malformed packet.
func (c *guardConn) disconnect(err error) {
	if !c.fc.connected || c.fc.version != 5 {
		return
	}
	reason := byte(0x81)
	switch {
	case errors.Is(err, ErrTooLarge):
		reason = 0x95
	case errors.Is(err, errTopicAlias):
		reason = 0x94
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	if c.flushUnsent() == nil {
		_, _ = c.Conn.Write([]byte{pDisconnect << 4, 1, reason}) // best effort: the connection closes anyway
	}
}

// promote moves the connection from pending to active once CONNECT passed.
func (c *guardConn) promote() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == 0 {
		c.state = 1
		c.g.promote(c.addr)
	}
}

// finish releases the connection's slot when mochi is done with it.
func (c *guardConn) finish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state < 2 {
		c.g.release(c.addr, c.state == 1)
	}
	c.state = 2
}

func (c *guardConn) rejected() bool { return c.bad.Load() }
