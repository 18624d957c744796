package main

import (
	"net/url"
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

// validateUplink checks the uplink section when a URL is set.
func validateUplink(u UplinkConfig, add func(path, format string, args ...any)) {
	if d := time.Duration(u.AutonomyWarning); d < time.Hour || d > 365*24*time.Hour {
		add("uplink.autonomy_warning", "%s: want between 1h and 8760h", d)
	}
	if u.URL == "" {
		return
	}
	if p, err := url.Parse(u.URL); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		add("uplink.url", "%q: want http(s)://host[:port][/path]", u.URL)
	}
	switch {
	case u.Token == "" && u.TokenFile == "":
		add("uplink.token", "the cloud needs a bearer token: set token or token_file")
	case u.Token != "" && u.TokenFile != "":
		add("uplink.token_file", "set token or token_file, not both")
	}
	for path, f := range map[string]string{"uplink.token_file": u.TokenFile, "uplink.ca_file": u.CAFile, "uplink.client_cert": u.ClientCert, "uplink.client_key": u.ClientKey} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			add(path, "%v", err)
		}
	}
	if (u.ClientCert == "") != (u.ClientKey == "") {
		add("uplink.client_key", "mutual TLS needs both client_cert and client_key")
	}
	if u.BatchMaxReadings < 1 || u.BatchMaxReadings > 10000 {
		add("uplink.batch_max_readings", "%d: want 1 to 10000", u.BatchMaxReadings)
	}
	if u.BatchMaxSize < 1<<10 || u.BatchMaxSize > 16<<20 {
		add("uplink.batch_max_size", "%s: want 1KiB to 16MiB", u.BatchMaxSize)
	}
	if u.InFlight < 1 || u.InFlight > 16 {
		add("uplink.in_flight", "%d: want 1 to 16", u.InFlight)
	}
	if u.BacklogRate < 0 {
		add("uplink.backlog_rate", "%v: want 0 (no cap) or more readings/s", u.BacklogRate)
	}
	for path, d := range map[string]Duration{"uplink.flush_interval": u.FlushInterval, "uplink.backoff_base": u.BackoffBase, "uplink.timeout": u.Timeout} {
		if d < Duration(10*time.Millisecond) || d > Duration(5*time.Minute) {
			add(path, "%s: want between 10ms and 5m", d)
		}
	}
	if u.BackoffMax < u.BackoffBase || u.BackoffMax > Duration(24*time.Hour) {
		add("uplink.backoff_max", "%s: want between backoff_base (%s) and 24h", u.BackoffMax, u.BackoffBase)
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
