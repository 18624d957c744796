package httpapi

import (
	"fmt"
	"net"
	"net/url"
	"time"
)

// Config is the API's section of the configuration file (api:), one field
// per key: the daemon decodes the file straight into it. Listen,
// MaxConnections and the TLS keys are for the daemon, which makes the
// listener; the Server reads the rest.
type Config struct {
	// Listen is the HTTP address; "" turns the API off.
	Listen string `yaml:"listen"`
	// OpenReads lets anyone on the LAN read without a token; changes always
	// need one.
	OpenReads bool `yaml:"open_reads"`
	// CORSOrigins are the browser origins (scheme://host:port) allowed to
	// call the API from their pages.
	CORSOrigins []string `yaml:"cors_origins"`
	// TrustedProxies are the proxies (IPs or CIDRs) whose X-Forwarded-For
	// is believed. None by default: the client is the TCP peer.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Hosts are names (or addresses) clients may use for the gateway
	// besides those it knows itself (its hostname, hostname.local, its
	// interface addresses, localhost): a DNS name given to it, or the name
	// a reverse proxy passes on. Any other Host is refused with 421.
	Hosts []string `yaml:"hosts"`
	// MaxConnections caps the API's open connections, so that sockets held
	// open to it cannot starve the MQTT broker of file descriptors; past
	// it, or past one address's share of it (an eighth), a new connection
	// is closed at once.
	MaxConnections int `yaml:"max_connections"`
	// RateLimit is requests per second per client, RateBurst the burst.
	RateLimit float64 `yaml:"rate_limit"`
	RateBurst int     `yaml:"rate_burst"`
	// MaxBodySize caps a request body.
	MaxBodySize int64 `yaml:"max_body_size" config:"size"`
	// SessionTTL is how long a login token lives.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// TLSCert and TLSKey serve HTTPS; TLSSelfSigned instead generates a
	// certificate once into the data directory.
	TLSCert       string `yaml:"tls_cert" config:"file"`
	TLSKey        string `yaml:"tls_key" config:"file"`
	TLSSelfSigned bool   `yaml:"tls_self_signed"`
}

// DefaultConfig returns the API's defaults: the standard port, open to
// reads on the LAN. New uses them for every zero number.
func DefaultConfig() Config {
	return Config{Listen: ":8080", OpenReads: true, MaxConnections: 128, RateLimit: 20, RateBurst: 60,
		MaxBodySize: 64 << 10, SessionTTL: 12 * time.Hour}
}

// withDefaults fills every zero number the Server reads from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.RateLimit <= 0 {
		c.RateLimit = d.RateLimit
	}
	if c.RateBurst <= 0 {
		c.RateBurst = d.RateBurst
	}
	if c.MaxBodySize <= 0 {
		c.MaxBodySize = d.MaxBodySize
	}
	if c.SessionTTL <= 0 {
		c.SessionTTL = d.SessionTTL
	}
	return c
}

// Validate reports every value out of range to problem, naming its key
// within the section ("rate_limit"). Every number is explicit here, as
// DefaultConfig gives them all: a zero is a problem, not "the default".
// That the listen address parses and the TLS files exist is the daemon's
// to check: it opens them.
func (c Config) Validate(problem func(key, msg string)) {
	p := func(key, format string, args ...any) { problem(key, fmt.Sprintf(format, args...)) }
	for _, origin := range c.CORSOrigins {
		u, err := url.Parse(origin)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			p("cors_origins", "%q: want an origin such as http://tablet.local:8080", origin)
		}
	}
	for _, proxy := range c.TrustedProxies {
		if net.ParseIP(proxy) == nil {
			if _, _, err := net.ParseCIDR(proxy); err != nil {
				p("trusted_proxies", "%q: want an IP address or a CIDR such as 10.0.0.0/8", proxy)
			}
		}
	}
	if c.MaxConnections < 1 || c.MaxConnections > 10000 {
		p("max_connections", "%d: want 1 to 10000", c.MaxConnections)
	}
	if c.RateLimit <= 0 || c.RateBurst < 1 {
		p("rate_limit", "%v per second with a burst of %d: want both above 0", c.RateLimit, c.RateBurst)
	}
	if c.MaxBodySize < 1<<10 || c.MaxBodySize > 16<<20 {
		p("max_body_size", "%d bytes: want 1KiB to 16MiB", c.MaxBodySize)
	}
	if c.SessionTTL < time.Minute || c.SessionTTL > 30*24*time.Hour {
		p("session_ttl", "%s: want between 1m and 720h", c.SessionTTL)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		p("tls_cert", "tls_cert and tls_key go together")
	}
	if c.TLSSelfSigned && c.TLSCert != "" {
		p("tls_self_signed", "choose tls_self_signed or tls_cert/tls_key, not both")
	}
}
