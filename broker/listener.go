package broker

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// tcpListener is the broker's MQTT listener over TCP or TLS. mochi's own
// returns from Serve on the first Accept error, so one moment without file
// descriptors (a flood of sockets to any port of the gateway) would stop
// MQTT for good while everything else recovers. This one backs off on
// temporary errors, as net/http does, and carries on.
type tcpListener struct {
	id, address string
	tls         *tls.Config
	ln          net.Listener
	end         atomic.Bool
	onErr       func(reason string, err error, attrs ...any) // rate-limited logging, by the broker
	errs        *atomic.Uint64                               // accept errors survived
}

var _ listeners.Listener = (*tcpListener)(nil)

// ID returns the listener's id ("tcp", "tls").
func (l *tcpListener) ID() string { return l.id }

// Address returns the bound address once Init ran, else the configured one.
func (l *tcpListener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.address
}

// Protocol names the transport.
func (l *tcpListener) Protocol() string { return "tcp" }

// Init binds the address.
func (l *tcpListener) Init(*slog.Logger) error {
	ln, err := net.Listen("tcp", l.address)
	if err != nil {
		return err
	}
	if l.tls != nil {
		ln = tls.NewListener(ln, l.tls)
	}
	l.ln = ln
	return nil
}

// maxAcceptDelay caps the back-off after accept errors.
const maxAcceptDelay = time.Second

// Serve accepts connections until Close, each handed to establish on its
// own goroutine.
func (l *tcpListener) Serve(establish listeners.EstablishFn) {
	var delay time.Duration
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if l.end.Load() {
				return
			}
			if !temporaryAccept(err) {
				l.onErr("mqtt listener stopped", err)
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), maxAcceptDelay)
			l.errs.Add(1)
			l.onErr("mqtt listener cannot accept; retrying", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		go func() { _ = establish(l.id, conn) }() // the guard and mochi count and log what matters
	}
}

// temporaryAccept reports whether an Accept error passes: out of file
// descriptors or memory, or a connection aborted before it was taken.
func temporaryAccept(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Close stops accepting and closes the listener's clients.
func (l *tcpListener) Close(closeClients listeners.CloseFn) {
	l.end.Store(true)
	if l.ln != nil {
		_ = l.ln.Close() // Serve returns on the error this causes
	}
	closeClients(l.id)
}
