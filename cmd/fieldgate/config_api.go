package main

import (
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
	// Hosts are names the gateway answers to besides its hostname,
	// hostname.local, its addresses and localhost (DNS rebinding: any
	// other Host gets 421).
	Hosts []string `yaml:"hosts"`
	// MaxConnections caps the API's open connections, so that sockets
	// held open to it cannot starve the MQTT broker of file descriptors;
	// past it, or past one address's share of it (an eighth), a new
	// connection is closed at once.
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

// apiKeys names the configuration key of each API option.
var apiKeys = map[string]string{"CORSOrigins": "api.cors_origins", "TrustedProxies": "api.trusted_proxies",
	"RateLimit": "api.rate_limit", "MaxBodyBytes": "api.max_body_size", "SessionTTL": "api.session_ttl",
	"AutonomyWarning": "uplink.autonomy_warning"}

// validateAPI checks the api section: the API's own ranges, and the
// listener's address, connection cap and TLS files.
func validateAPI(c *Config, add func(path, format string, args ...any)) {
	a := c.API
	c.apiOptions().Validate(keyed(apiKeys, add))
	checkListen("api.listen", a.Listen, add)
	if a.MaxConnections < 1 || a.MaxConnections > 10000 {
		add("api.max_connections", "%d: want 1 to 10000", a.MaxConnections)
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
		Version: version, GatewayName: c.Gateway.Name, OpenReads: a.OpenReads, CORSOrigins: a.CORSOrigins, TrustedProxies: a.TrustedProxies, Hosts: a.Hosts,
		RateLimit: a.RateLimit, RateBurst: a.RateBurst, MaxBodyBytes: int64(a.MaxBodySize),
		SessionTTL: time.Duration(a.SessionTTL), ExportDir: filepath.Join(c.DataDir, "exports"),
		AutonomyWarning: time.Duration(c.Uplink.AutonomyWarning),
	}
}
