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
	// WSOrigins are browser origins allowed to use MQTT over WebSocket
	// (none by default: nodes send no Origin).
	WSOrigins []string `yaml:"ws_origins"`
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

// mqttKeys names the configuration key of each broker option.
var mqttKeys = map[string]string{"TLSListen": "mqtt.tls_listen", "Limits.MaxPacketSize": "mqtt.max_packet_size",
	"Limits.MaxConnections": "mqtt.max_connections", "Limits.MaxPending": "mqtt.max_pending",
	"Limits.ConnectTimeout": "mqtt.connect_timeout", "Limits.MaxKeepalive": "mqtt.max_keepalive",
	"PublishRate": "mqtt.publish_rate", "ConnectsPerMinute": "mqtt.connects_per_minute",
	"MaxQuantities": "mqtt.max_quantities_per_device", "ReceiveMaximum": "mqtt.receive_maximum", "MaxRetained": "mqtt.max_retained"}

// validateMQTT checks the mqtt section: the broker's own ranges, that the
// files it names exist, and that receive_maximum fits the protocol's field.
func validateMQTT(c *Config, add func(path, format string, args ...any)) {
	m := c.MQTT
	c.brokerOptions().Validate(keyed(mqttKeys, add))
	checkListen("mqtt.listen", m.Listen, add)
	checkListen("mqtt.tls_listen", m.TLSListen, add)
	checkListen("mqtt.ws_listen", m.WSListen, add)
	for path, f := range map[string]string{"mqtt.tls_cert": m.TLSCert, "mqtt.tls_key": m.TLSKey} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			add(path, "%v", err)
		}
	}
	if m.ReceiveMaximum > 65535 {
		add("mqtt.receive_maximum", "%d: want 1 to 65535", m.ReceiveMaximum)
	}
}

// brokerOptions maps the configuration onto the broker's options.
func (c *Config) brokerOptions() broker.Options {
	m := c.MQTT
	return broker.Options{
		Listen: m.Listen, TLSListen: m.TLSListen, TLSCert: m.TLSCert, TLSKey: m.TLSKey, WSListen: m.WSListen, WSOrigins: m.WSOrigins,
		Limits: broker.Limits{
			MaxPacketSize: int(m.MaxPacketSize), MaxConnections: m.MaxConnections, MaxPending: m.MaxPending,
			ConnectTimeout: time.Duration(m.ConnectTimeout), MaxKeepalive: time.Duration(m.MaxKeepalive),
		},
		PublishRate: m.PublishRate, PublishBurst: m.PublishBurst, ReceiveMaximum: uint16(min(max(m.ReceiveMaximum, 0), 65535)),
		ConnectsPerMinute: m.ConnectsPerMinute, ConnectBurst: m.ConnectBurst, MaxQuantities: m.MaxQuantitiesPerDevice,
		MaxRetained: m.MaxRetained, AllowAnonymous: m.AllowAnonymous,
	}
}
