package uplink

import (
	"fmt"
	"time"
)

// Config is the uplink's section of the configuration file (uplink:), one
// field per key: the daemon decodes the file straight into it.
type Config struct {
	// URL is the cloud's base URL, e.g. https://ingest.example.com; empty
	// means no uplink: readings stay local and retention treats them as
	// delivered.
	URL string `yaml:"url"`
	// Token is the bearer token. TokenFile, if set instead, is read before
	// every request, so a rotated token needs no restart.
	Token     string `yaml:"token" config:"secret"`
	TokenFile string `yaml:"token_file" config:"file"`
	// BatchMaxReadings and BatchMaxSize cap a batch (readings;
	// uncompressed JSON bytes).
	BatchMaxReadings int `yaml:"batch_max_readings"`
	BatchMaxSize     int `yaml:"batch_max_size" config:"size"`
	// InFlight is how many batches may be in flight at once.
	InFlight int `yaml:"in_flight"`
	// BacklogRate caps how fast the backlog drains, in readings/s, so that
	// a long outage's drain leaves the Pi and the cloud room to breathe;
	// live readings are not capped. 0: no cap.
	BacklogRate float64 `yaml:"backlog_rate"`
	// FlushInterval is how often new readings are looked for.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// BackoffBase and BackoffMax bound the retry backoff: by default an
	// outage is probed at least every 30 s, so the uplink is back within
	// seconds of the cloud, while a fleet of 200 sends some 7 probes a
	// second.
	BackoffBase time.Duration `yaml:"backoff_base"`
	BackoffMax  time.Duration `yaml:"backoff_max"`
	// Timeout bounds each request.
	Timeout time.Duration `yaml:"timeout"`
	// CAFile adds a CA to the system roots; ClientCert and ClientKey
	// enable mutual TLS.
	CAFile     string `yaml:"ca_file" config:"file"`
	ClientCert string `yaml:"client_cert" config:"file"`
	ClientKey  string `yaml:"client_key" config:"file"`
	// AutonomyWarning: the API's health warns when, at the current rate,
	// the store would fill with readings the cloud has not got in less
	// than this.
	AutonomyWarning time.Duration `yaml:"autonomy_warning"`
}

// DefaultConfig returns the uplink's defaults. New uses them for every
// zero number but BacklogRate, whose zero means "no cap".
func DefaultConfig() Config {
	return Config{
		BatchMaxReadings: 500, BatchMaxSize: 256 << 10, InFlight: 3, BacklogRate: 5000,
		FlushInterval: time.Second, BackoffBase: time.Second, BackoffMax: 30 * time.Second, Timeout: 30 * time.Second,
		AutonomyWarning: 7 * 24 * time.Hour,
	}
}

// Validate reports every value out of range to problem, naming its key
// within the section ("in_flight"). Every number is explicit here, as
// DefaultConfig gives them all: a zero is a problem, not "the default".
// Without a URL only autonomy_warning matters.
func (c Config) Validate(problem func(key, msg string)) {
	p := func(key, format string, args ...any) { problem(key, fmt.Sprintf(format, args...)) }
	if c.AutonomyWarning < time.Hour || c.AutonomyWarning > 365*24*time.Hour {
		p("autonomy_warning", "%s: want between 1h and 8760h", c.AutonomyWarning)
	}
	if c.URL == "" {
		return
	}
	if err := checkURL(c.URL); err != nil {
		p("url", "%v", err)
	}
	switch {
	case c.Token == "" && c.TokenFile == "":
		p("token", "the cloud needs a bearer token: set token or token_file")
	case c.Token != "" && c.TokenFile != "":
		p("token_file", "set token or token_file, not both")
	}
	if (c.ClientCert == "") != (c.ClientKey == "") {
		p("client_key", "mutual TLS needs both client_cert and client_key")
	}
	if c.BatchMaxReadings < 1 || c.BatchMaxReadings > 10000 {
		p("batch_max_readings", "%d: want 1 to 10000", c.BatchMaxReadings)
	}
	if c.BatchMaxSize < 1<<10 || c.BatchMaxSize > 16<<20 {
		p("batch_max_size", "%d bytes: want 1KiB to 16MiB", c.BatchMaxSize)
	}
	if c.InFlight < 1 || c.InFlight > 16 {
		p("in_flight", "%d: want 1 to 16", c.InFlight)
	}
	if c.BacklogRate < 0 {
		p("backlog_rate", "%v: want 0 (no cap) or more readings/s", c.BacklogRate)
	}
	for _, f := range []struct {
		key string
		d   time.Duration
	}{{"flush_interval", c.FlushInterval}, {"backoff_base", c.BackoffBase}, {"timeout", c.Timeout}} {
		if f.d < 10*time.Millisecond || f.d > 5*time.Minute {
			p(f.key, "%s: want between 10ms and 5m", f.d)
		}
	}
	if c.BackoffMax < c.BackoffBase || c.BackoffMax > 24*time.Hour {
		p("backoff_max", "%s: want between backoff_base (%s) and 24h", c.BackoffMax, c.BackoffBase)
	}
}
