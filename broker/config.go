package broker

import (
	"fmt"
	"time"
)

// Config is the broker's section of the configuration file (mqtt:), one
// field per key: the daemon decodes the file straight into it.
type Config struct {
	// Listen is the plain TCP address (":1883"); TLSListen with TLSCert
	// and TLSKey the MQTT-over-TLS one (":8883"); WSListen MQTT over
	// WebSocket (":8081"). Empty disables a listener.
	Listen    string `yaml:"listen"`
	TLSListen string `yaml:"tls_listen"`
	TLSCert   string `yaml:"tls_cert" config:"file"`
	TLSKey    string `yaml:"tls_key" config:"file"`
	WSListen  string `yaml:"ws_listen"`
	// WSOrigins are the browser origins (scheme://host:port) allowed to
	// use MQTT over WebSocket; by default none (ESP32 clients send no
	// Origin, and any web page could otherwise talk MQTT to the gateway).
	WSOrigins []string `yaml:"ws_origins"`
	// Limits guard the listeners; in the file their keys sit in mqtt:
	// itself.
	Limits Limits `yaml:",inline"`
	// PublishRate and PublishBurst bound each device's publishes per
	// second, over all its connections and reconnections.
	PublishRate  float64 `yaml:"publish_rate"`
	PublishBurst int     `yaml:"publish_burst"`
	// ConnectsPerMinute and ConnectBurst bound how often each device may
	// connect: a node reconnecting after a Wi-Fi drop gets in, one in a
	// crash loop is slowed (by default to one try every 10 s).
	ConnectsPerMinute float64 `yaml:"connects_per_minute"`
	ConnectBurst      int     `yaml:"connect_burst"`
	// MaxQuantitiesPerDevice caps the distinct quantities one device may
	// create; readings of further ones are refused.
	MaxQuantitiesPerDevice int `yaml:"max_quantities_per_device"`
	// ReceiveMaximum bounds each client's unacknowledged QoS 1/2
	// publishes (1 to 65535, the protocol's field).
	ReceiveMaximum int `yaml:"receive_maximum"`
	// MaxRetained caps retained messages; past it, new topics' retain flag
	// is dropped (the message is still delivered).
	MaxRetained int `yaml:"max_retained"`
	// AllowAnonymous lets clients without a username in, using their client
	// id as their device id. For a bench only.
	AllowAnonymous bool `yaml:"allow_anonymous"`
}

// DefaultConfig returns the broker's defaults. New uses them for every
// zero number; an empty address stays off.
func DefaultConfig() Config {
	return Config{
		Listen: ":1883",
		Limits: Limits{MaxPacketSize: 16 << 10, MaxConnections: 500, MaxPending: 64,
			ConnectTimeout: 5 * time.Second, MaxKeepalive: 10 * time.Minute},
		PublishRate: 20, PublishBurst: 100, ConnectsPerMinute: 6, ConnectBurst: 10,
		MaxQuantitiesPerDevice: 64, ReceiveMaximum: 32, MaxRetained: 1000,
	}
}

// withDefaults fills every zero number from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	fill := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	fill(&c.PublishBurst, d.PublishBurst)
	fill(&c.ConnectBurst, d.ConnectBurst)
	fill(&c.MaxQuantitiesPerDevice, d.MaxQuantitiesPerDevice)
	fill(&c.ReceiveMaximum, d.ReceiveMaximum)
	fill(&c.MaxRetained, d.MaxRetained)
	if c.PublishRate <= 0 {
		c.PublishRate = d.PublishRate
	}
	if c.ConnectsPerMinute <= 0 {
		c.ConnectsPerMinute = d.ConnectsPerMinute
	}
	c.Limits = c.Limits.withDefaults(d.Limits)
	return c
}

// Validate reports every value out of range to problem, naming its key
// within the section ("max_packet_size"). Every number is explicit here,
// as DefaultConfig gives them all: a zero is a problem, not "the default".
func (c Config) Validate(problem func(key, msg string)) {
	p := func(key, format string, args ...any) { problem(key, fmt.Sprintf(format, args...)) }
	if c.TLSListen != "" && (c.TLSCert == "" || c.TLSKey == "") {
		p("tls_listen", "needs tls_cert and tls_key")
	}
	l := c.Limits
	if l.MaxPacketSize < 1<<10 || l.MaxPacketSize > 1<<20 {
		p("max_packet_size", "%d bytes: want 1KiB to 1MiB", l.MaxPacketSize)
	}
	if l.MaxConnections < 1 || l.MaxConnections > 10000 {
		p("max_connections", "%d: want 1 to 10000", l.MaxConnections)
	}
	if l.MaxPending < 1 || l.MaxPending > 10000 {
		p("max_pending", "%d: want 1 to 10000", l.MaxPending)
	}
	if l.ConnectTimeout < 100*time.Millisecond || l.ConnectTimeout > time.Minute {
		p("connect_timeout", "%s: want between 100ms and 1m", l.ConnectTimeout)
	}
	if l.MaxKeepalive < 10*time.Second || l.MaxKeepalive > 18*time.Hour {
		p("max_keepalive", "%s: want between 10s and 18h", l.MaxKeepalive)
	}
	if c.PublishRate <= 0 || c.PublishBurst < 1 {
		p("publish_rate", "%v per second with a burst of %d: want both above 0", c.PublishRate, c.PublishBurst)
	}
	if c.ConnectsPerMinute <= 0 || c.ConnectBurst < 1 {
		p("connects_per_minute", "%v per minute with a burst of %d: want both above 0", c.ConnectsPerMinute, c.ConnectBurst)
	}
	if c.MaxQuantitiesPerDevice < 1 || c.MaxQuantitiesPerDevice > 10000 {
		p("max_quantities_per_device", "%d: want 1 to 10000", c.MaxQuantitiesPerDevice)
	}
	if c.ReceiveMaximum < 1 || c.ReceiveMaximum > 65535 {
		p("receive_maximum", "%d: want 1 to 65535", c.ReceiveMaximum)
	}
	if c.MaxRetained < 1 {
		p("max_retained", "%d: want at least 1", c.MaxRetained)
	}
}
