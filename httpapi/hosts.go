package httpapi

import (
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// hostGuard knows the names the gateway answers to, against DNS
// rebinding: a web page a technician opens can resolve its own name to the
// gateway's address, and the browser then sends the page's name as Host
// (and as the WebSocket's Origin). Only the gateway's own names are
// served: the configured ones (Options.Hosts), its hostname and
// hostname.local, its interface addresses, and localhost.
type hostGuard struct {
	now   func() time.Time
	fixed map[string]bool // configured, and the hostname's

	mu        sync.Mutex
	addrs     map[string]bool // interface addresses
	refreshed time.Time
}

func newHostGuard(configured []string, now func() time.Time) *hostGuard {
	g := &hostGuard{now: now, fixed: map[string]bool{"localhost": true}}
	for _, h := range configured {
		g.fixed[normalHost(h)] = true
	}
	if name, err := os.Hostname(); err == nil && name != "" {
		name = normalHost(name)
		short, _, _ := strings.Cut(name, ".")
		for _, n := range []string{name, short, short + ".local", name + ".local"} {
			g.fixed[n] = true
		}
	}
	g.refresh()
	return g
}

// refresh reads the interface addresses again (DHCP may have changed
// them). g.mu is held or g is not shared yet.
func (g *hostGuard) refresh() {
	g.addrs = map[string]bool{"127.0.0.1": true, "::1": true}
	if as, err := net.InterfaceAddrs(); err == nil {
		for _, a := range as {
			if ipn, ok := a.(*net.IPNet); ok {
				g.addrs[ipn.IP.String()] = true
			}
		}
	}
	g.refreshed = g.now()
}

// allowed reports whether host (a Host header or an Origin's host, with or
// without a port) names the gateway.
func (g *hostGuard) allowed(host string) bool {
	h := normalHost(host)
	if g.fixed[h] {
		return true
	}
	if ip := net.ParseIP(h); ip != nil {
		h = ip.String()
		if ip.IsLoopback() {
			return true
		}
	} else {
		return false // a name, and not one of ours
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.addrs[h] {
		return true
	}
	if g.now().Sub(g.refreshed) > 10*time.Second { // an address not seen yet: look again, rarely
		g.refresh()
	}
	return g.addrs[h]
}

// normalHost lowercases host and strips its port, brackets and final dot.
func normalHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	return strings.ToLower(host)
}

// checkHost answers 421 Misdirected Request to a request for a name that
// is not the gateway's (or for none: HTTP/1.1 requires one).
func (s *Server) checkHost(c *gin.Context) {
	if h := c.Request.Host; !internal(c.Request) && !s.hosts.allowed(h) {
		s.fail(c, errorf(http.StatusMisdirectedRequest, "this gateway does not answer to %s; use its address or a name in api.hosts", quote(normalHost(h))))
		return
	}
	c.Next()
}
