package main

import (
	"os"
	"time"

	"fieldgate/httpapi"
	"fieldgate/uplink"
)

// UplinkConfig says where and how readings go to the cloud.
type UplinkConfig struct {
	// URL is the cloud's base URL; empty means no uplink: readings stay
	// local and retention treats them as delivered.
	URL string `yaml:"url"`
	// Token is the bearer token; TokenFile, if set instead, is re-read
	// before every request, so a rotated token needs no restart.
	Token     Secret `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// BatchMaxReadings and BatchMaxSize cap one batch.
	BatchMaxReadings int      `yaml:"batch_max_readings"`
	BatchMaxSize     ByteSize `yaml:"batch_max_size"`
	// InFlight batches may be sent at once.
	InFlight int `yaml:"in_flight"`
	// BacklogRate caps the backlog's drain in readings/s (0: no cap); live
	// readings are not capped.
	BacklogRate float64 `yaml:"backlog_rate"`
	// FlushInterval is how often new readings are looked for.
	FlushInterval Duration `yaml:"flush_interval"`
	BackoffBase   Duration `yaml:"backoff_base"`
	BackoffMax    Duration `yaml:"backoff_max"`
	Timeout       Duration `yaml:"timeout"`
	// CAFile adds a CA to the system roots; ClientCert and ClientKey turn
	// on mutual TLS.
	CAFile     string `yaml:"ca_file"`
	ClientCert string `yaml:"client_cert"`
	ClientKey  string `yaml:"client_key"`
	// AutonomyWarning: health warns when, at the current rate, the store
	// would fill with readings the cloud has not got in less than this.
	AutonomyWarning Duration `yaml:"autonomy_warning"`
}

// Secret is a string that check-config prints as [redacted].
type Secret string

// MarshalYAML hides a set secret.
func (s Secret) MarshalYAML() (any, error) {
	if s == "" {
		return "", nil
	}
	return "[redacted]", nil
}

// defaultUplink is the uplink's own defaults (uplink.DefaultOptions), with
// the backlog capped so that a long outage's drain leaves the Pi room to
// breathe, and the API's autonomy warning.
func defaultUplink() UplinkConfig {
	o := uplink.DefaultOptions()
	return UplinkConfig{
		BatchMaxReadings: o.MaxReadings, BatchMaxSize: ByteSize(o.MaxBytes), InFlight: o.InFlight, BacklogRate: 5000,
		FlushInterval: Duration(o.FlushInterval), BackoffBase: Duration(o.BackoffBase),
		BackoffMax: Duration(o.BackoffMax), Timeout: Duration(o.Timeout),
		AutonomyWarning: Duration(httpapi.DefaultOptions().AutonomyWarning),
	}
}

// uplinkKeys names the configuration key of each uplink option.
var uplinkKeys = map[string]string{"URL": "uplink.url", "Token": "uplink.token", "TokenFile": "uplink.token_file",
	"ClientKey": "uplink.client_key", "MaxReadings": "uplink.batch_max_readings", "MaxBytes": "uplink.batch_max_size",
	"InFlight": "uplink.in_flight", "BacklogRate": "uplink.backlog_rate", "FlushInterval": "uplink.flush_interval",
	"BackoffBase": "uplink.backoff_base", "BackoffMax": "uplink.backoff_max", "Timeout": "uplink.timeout"}

// validateUplink checks the uplink section when a URL is set: the
// sender's own ranges, and that the files it names exist.
func validateUplink(c *Config, add func(path, format string, args ...any)) {
	u := c.Uplink
	if u.URL == "" {
		return
	}
	c.uplinkOptions().Validate(keyed(uplinkKeys, add))
	for path, f := range map[string]string{"uplink.token_file": u.TokenFile, "uplink.ca_file": u.CAFile, "uplink.client_cert": u.ClientCert, "uplink.client_key": u.ClientKey} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			add(path, "%v", err)
		}
	}
}

// uplinkOptions maps the configuration onto the sender's options.
func (c *Config) uplinkOptions() uplink.Options {
	u := c.Uplink
	return uplink.Options{
		URL: u.URL, Token: string(u.Token), TokenFile: u.TokenFile, Version: version,
		MaxReadings: u.BatchMaxReadings, MaxBytes: int(u.BatchMaxSize), InFlight: u.InFlight,
		BacklogRate: u.BacklogRate, FlushInterval: time.Duration(u.FlushInterval),
		BackoffBase: time.Duration(u.BackoffBase), BackoffMax: time.Duration(u.BackoffMax),
		Timeout: time.Duration(u.Timeout), CAFile: u.CAFile, ClientCert: u.ClientCert, ClientKey: u.ClientKey,
	}
}
