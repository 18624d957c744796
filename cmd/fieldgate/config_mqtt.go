package main

import (
	"os"
	"time"

	"fieldgate/broker"
)

// MQTTConfig configures the embedded broker ESP32 nodes publish to.
type MQTTConfig struct {
	// Listen is the plain MQTT address; "" turns it off.
	Listen string `yaml:"listen"`
	// TLSListen with TLSCert and TLSKey serves MQTT over TLS.
	TLSListen string `yaml:"tls_listen"`
	TLSCert   string `yaml:"tls_cert"`
	TLSKey    string `yaml:"tls_key"`
	// WSListen serves MQTT over WebSocket.
	WSListen string `yaml:"ws_listen"`
	// MaxPacketSize bounds one MQTT packet.
	MaxPacketSize ByteSize `yaml:"max_packet_size"`
	// MaxConnections bounds connected clients; MaxPending sockets that
	// have not sent CONNECT; ConnectTimeout how long they may take.
	MaxConnections int      `yaml:"max_connections"`
	MaxPending     int      `yaml:"max_pending"`
	ConnectTimeout Duration `yaml:"connect_timeout"`
	// MaxKeepalive replaces a client's keepalive of 0 or more.
	MaxKeepalive Duration `yaml:"max_keepalive"`
	// PublishRate and PublishBurst bound each device's publishes per
	// second, over all its connections and reconnects.
	PublishRate  float64 `yaml:"publish_rate"`
	PublishBurst int     `yaml:"publish_burst"`
	// ConnectsPerMinute and ConnectBurst bound how often a device connects.
	ConnectsPerMinute float64 `yaml:"connects_per_minute"`
	ConnectBurst      int     `yaml:"connect_burst"`
	// MaxQuantitiesPerDevice caps the distinct quantities a device creates.
	MaxQuantitiesPerDevice int `yaml:"max_quantities_per_device"`
	// ReceiveMaximum bounds each client's unacknowledged QoS 1/2 publishes.
	ReceiveMaximum int `yaml:"receive_maximum"`
	// MaxRetained caps retained messages from clients.
	MaxRetained int `yaml:"max_retained"`
	// AllowAnonymous lets clients in without credentials (their client id
	// is their device id). For a bench only: it is logged loudly.
	AllowAnonymous bool `yaml:"allow_anonymous"`
}

// defaultMQTT is the broker's own defaults (broker.DefaultOptions), on the
// standard port.
func defaultMQTT() MQTTConfig {
	o := broker.DefaultOptions()
	return MQTTConfig{
		Listen: ":1883", MaxPacketSize: ByteSize(o.Limits.MaxPacketSize), MaxConnections: o.Limits.MaxConnections,
		MaxPending: o.Limits.MaxPending, ConnectTimeout: Duration(o.Limits.ConnectTimeout), MaxKeepalive: Duration(o.Limits.MaxKeepalive),
		PublishRate: o.PublishRate, PublishBurst: o.PublishBurst, ConnectsPerMinute: o.ConnectsPerMinute, ConnectBurst: o.ConnectBurst,
		MaxQuantitiesPerDevice: o.MaxQuantities, ReceiveMaximum: int(o.ReceiveMaximum), MaxRetained: o.MaxRetained,
	}
}

func validateMQTT(m MQTTConfig, add func(path, format string, args ...any)) {
	if m.TLSListen != "" && (m.TLSCert == "" || m.TLSKey == "") {
		add("mqtt.tls_listen", "needs tls_cert and tls_key")
	}
	for path, f := range map[string]string{"mqtt.tls_cert": m.TLSCert, "mqtt.tls_key": m.TLSKey} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			add(path, "%v", err)
		}
	}
	if m.MaxPacketSize < 1<<10 || m.MaxPacketSize > 1<<20 {
		add("mqtt.max_packet_size", "%s: want 1KiB to 1MiB", m.MaxPacketSize)
	}
	if m.MaxConnections < 1 || m.MaxConnections > 10000 {
		add("mqtt.max_connections", "%d: want 1 to 10000", m.MaxConnections)
	}
	if m.MaxPending < 1 || m.MaxPending > 10000 {
		add("mqtt.max_pending", "%d: want 1 to 10000", m.MaxPending)
	}
	if d := time.Duration(m.ConnectTimeout); d < 100*time.Millisecond || d > time.Minute {
		add("mqtt.connect_timeout", "%s: want between 100ms and 1m", d)
	}
	if d := time.Duration(m.MaxKeepalive); d < 10*time.Second || d > 18*time.Hour {
		add("mqtt.max_keepalive", "%s: want between 10s and 18h", d)
	}
	if m.PublishRate <= 0 || m.PublishBurst < 1 {
		add("mqtt.publish_rate", "%v per second with a burst of %d: want both above 0", m.PublishRate, m.PublishBurst)
	}
	if m.ConnectsPerMinute <= 0 || m.ConnectBurst < 1 {
		add("mqtt.connects_per_minute", "%v per minute with a burst of %d: want both above 0", m.ConnectsPerMinute, m.ConnectBurst)
	}
	if m.MaxQuantitiesPerDevice < 1 || m.MaxQuantitiesPerDevice > 10000 {
		add("mqtt.max_quantities_per_device", "%d: want 1 to 10000", m.MaxQuantitiesPerDevice)
	}
	if m.ReceiveMaximum < 1 || m.ReceiveMaximum > 65535 {
		add("mqtt.receive_maximum", "%d: want 1 to 65535", m.ReceiveMaximum)
	}
	if m.MaxRetained < 1 {
		add("mqtt.max_retained", "%d: want at least 1", m.MaxRetained)
	}
}

// brokerOptions maps the configuration onto the broker's options.
func (c *Config) brokerOptions() broker.Options {
	m := c.MQTT
	return broker.Options{
		Listen: m.Listen, TLSListen: m.TLSListen, TLSCert: m.TLSCert, TLSKey: m.TLSKey, WSListen: m.WSListen,
		Limits: broker.Limits{
			MaxPacketSize: int(m.MaxPacketSize), MaxConnections: m.MaxConnections, MaxPending: m.MaxPending,
			ConnectTimeout: time.Duration(m.ConnectTimeout), MaxKeepalive: time.Duration(m.MaxKeepalive),
		},
		PublishRate: m.PublishRate, PublishBurst: m.PublishBurst, ReceiveMaximum: uint16(m.ReceiveMaximum),
		ConnectsPerMinute: m.ConnectsPerMinute, ConnectBurst: m.ConnectBurst, MaxQuantities: m.MaxQuantitiesPerDevice,
		MaxRetained: m.MaxRetained, AllowAnonymous: m.AllowAnonymous,
	}
}
