package main

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"fieldgate/httpapi"
)

// APIConfig configures the local REST API and web page.
type APIConfig struct {
	// Listen is the HTTP address; "" turns the API off.
	Listen string `yaml:"listen"`
	// OpenReads lets anyone on the LAN read without logging in; changes
	// always need a token.
	OpenReads bool `yaml:"open_reads"`
	// CORSOrigins are browser origins (scheme://host:port) allowed to call
	// the API from their pages.
	CORSOrigins []string `yaml:"cors_origins"`
	// TrustedProxies are reverse proxies (IPs or CIDRs) whose
	// X-Forwarded-For is believed.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// MaxConnections caps the API's open connections, so that sockets
	// held open to it cannot starve the MQTT broker of file descriptors;
	// more wait in the kernel's queue until one closes.
	MaxConnections int `yaml:"max_connections"`
	// RateLimit and RateBurst bound each client's requests per second.
	RateLimit float64 `yaml:"rate_limit"`
	RateBurst int     `yaml:"rate_burst"`
	// MaxBodySize bounds a request body.
	MaxBodySize ByteSize `yaml:"max_body_size"`
	// SessionTTL is how long a login lasts.
	SessionTTL Duration `yaml:"session_ttl"`
	// TLSCert and TLSKey serve HTTPS; TLSSelfSigned instead generates a
	// certificate once into the data directory.
	TLSCert       string `yaml:"tls_cert"`
	TLSKey        string `yaml:"tls_key"`
	TLSSelfSigned bool   `yaml:"tls_self_signed"`
}

// defaultAPI is the API's own defaults (httpapi.DefaultOptions) on the
// standard port, open to reads on the LAN.
func defaultAPI() APIConfig {
	o := httpapi.DefaultOptions()
	return APIConfig{Listen: ":8080", OpenReads: true, MaxConnections: 128, RateLimit: o.RateLimit, RateBurst: o.RateBurst,
		MaxBodySize: ByteSize(o.MaxBodyBytes), SessionTTL: Duration(o.SessionTTL)}
}

func validateAPI(a APIConfig, add func(path, format string, args ...any)) {
	if a.Listen != "" {
		if _, _, err := net.SplitHostPort(a.Listen); err != nil {
			add("api.listen", "%q: want host:port or :port", a.Listen)
		}
	}
	if a.MaxConnections < 1 || a.MaxConnections > 10000 {
		add("api.max_connections", "%d: want 1 to 10000", a.MaxConnections)
	}
	for _, o := range a.CORSOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			add("api.cors_origins", "%q: want an origin such as http://tablet.local:8080", o)
		}
	}
	for _, p := range a.TrustedProxies {
		if net.ParseIP(p) == nil {
			if _, _, err := net.ParseCIDR(p); err != nil {
				add("api.trusted_proxies", "%q: want an IP address or a CIDR such as 10.0.0.0/8", p)
			}
		}
	}
	if a.RateLimit <= 0 || a.RateBurst < 1 {
		add("api.rate_limit", "%v per second with a burst of %d: want both above 0", a.RateLimit, a.RateBurst)
	}
	if a.MaxBodySize < 1<<10 || a.MaxBodySize > 16<<20 {
		add("api.max_body_size", "%s: want 1KiB to 16MiB", a.MaxBodySize)
	}
	if d := time.Duration(a.SessionTTL); d < time.Minute || d > 30*24*time.Hour {
		add("api.session_ttl", "%s: want between 1m and 720h", d)
	}
	if (a.TLSCert == "") != (a.TLSKey == "") {
		add("api.tls_cert", "tls_cert and tls_key go together")
	}
	if a.TLSSelfSigned && a.TLSCert != "" {
		add("api.tls_self_signed", "choose tls_self_signed or tls_cert/tls_key, not both")
	}
	for path, f := range map[string]string{"api.tls_cert": a.TLSCert, "api.tls_key": a.TLSKey} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			add(path, "%v", err)
		}
	}
}

// apiOptions maps the configuration onto the API's options.
func (c *Config) apiOptions() httpapi.Options {
	a := c.API
	return httpapi.Options{
		Version: version, GatewayName: c.Gateway.Name, OpenReads: a.OpenReads, CORSOrigins: a.CORSOrigins, TrustedProxies: a.TrustedProxies,
		RateLimit: a.RateLimit, RateBurst: a.RateBurst, MaxBodyBytes: int64(a.MaxBodySize),
		SessionTTL: time.Duration(a.SessionTTL), ExportDir: filepath.Join(c.DataDir, "exports"),
		AutonomyWarning: time.Duration(c.Uplink.AutonomyWarning),
	}
}
