package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"fieldgate/broker"
	"fieldgate/cmd/fieldgate/internal/config"
	"fieldgate/httpapi"
	"fieldgate/sensors"
	"fieldgate/store"
	"fieldgate/store/clock"
	"fieldgate/uplink"
)

// defaultConfigPath is where the daemon looks for its configuration when no
// -config flag is given. A missing file there means "embedded defaults".
const defaultConfigPath = "/etc/fieldgate/config.yaml"

// Config is fieldgate's whole configuration: loaded once at start, validated,
// and passed down explicitly. Each component's section is its own Config,
// with its defaults and ranges (see defaultConfig and validate); the
// daemon's own keys are the rest.
type Config struct {
	Gateway GatewayConfig `yaml:"gateway"`
	// DataDir holds the store. Default $STATE_DIRECTORY (systemd), else
	// ./fieldgate-data.
	DataDir string           `yaml:"data_dir"`
	Log     LogConfig        `yaml:"log"`
	Store   store.Config     `yaml:"store"`
	Sensors []sensors.Config `yaml:"sensors"`
	MQTT    broker.Config    `yaml:"mqtt"`
	Uplink  uplink.Config    `yaml:"uplink"`
	API     httpapi.Config   `yaml:"api"`
	Clock   clock.Config     `yaml:"clock"`
	// ShutdownTimeout bounds a clean stop: past it the daemon exits anyway.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// GatewayConfig names the gateway.
type GatewayConfig struct {
	// ID is the gateway's cloud-wide id. Empty: generated once and kept in
	// the store. Set: must match the store's.
	ID string `yaml:"id"`
	// Name is shown to technicians.
	Name string `yaml:"name"`
}

// LogConfig sets how much the daemon logs.
type LogConfig struct {
	Level string `yaml:"level"`
	// StatusInterval is how often a one-line summary is logged (0: never).
	StatusInterval time.Duration `yaml:"status_interval"`
}

// defaultConfig returns the embedded defaults. getenv supplies
// STATE_DIRECTORY, which systemd sets for StateDirectory=.
func defaultConfig(getenv func(string) string) Config {
	dataDir := "./fieldgate-data"
	if sd := getenv("STATE_DIRECTORY"); sd != "" {
		dataDir, _, _ = strings.Cut(sd, ":") // systemd lists several dirs separated by ':'
	}
	return Config{
		DataDir:         dataDir,
		Log:             LogConfig{Level: "info", StatusInterval: time.Minute},
		Store:           store.DefaultConfig(),
		MQTT:            broker.DefaultConfig(),
		Uplink:          uplink.DefaultConfig(),
		API:             httpapi.DefaultConfig(),
		Clock:           clock.DefaultConfig(),
		ShutdownTimeout: 15 * time.Second,
	}
}

// host is what the configuration's defaults depend on.
type host struct {
	hasI2C bool     // an I2C bus exists, so no simulated sensor by default
	env    []string // names of the FIELDGATE_* variables set, to catch typos
}

// detectHost looks at the machine the daemon runs on.
func detectHost() host {
	buses, _ := filepath.Glob("/dev/i2c-*") // the pattern is valid
	var env []string
	for _, kv := range os.Environ() {
		// FIELDGATE_TEST_* are the test suite's knobs, never settings.
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, config.EnvPrefix) && !strings.HasPrefix(name, "FIELDGATE_TEST_") {
			env = append(env, name)
		}
	}
	return host{hasI2C: len(buses) > 0, env: env}
}

// defaultSensors is used when the configuration lists no sensors: a
// simulated one when the machine has no I2C bus (a laptop, CI), so that the
// gateway shows live data anywhere.
func defaultSensors(h host) []sensors.Config {
	if h.hasI2C {
		return nil
	}
	return []sensors.Config{{Name: "lab", Driver: "sim", Interval: 10 * time.Second}}
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// validate checks every value and returns one message per problem, each
// naming the key, so that a technician can fix the file in one pass.
func (c *Config) validate() []fieldError {
	var errs []fieldError
	add := func(path, format string, args ...any) {
		errs = append(errs, fieldError{path, fmt.Sprintf(format, args...)})
	}
	in := func(section string) func(key, msg string) {
		return func(key, msg string) {
			if !strings.HasPrefix(key, "[") {
				key = "." + key
			}
			add(section+key, "%s", msg)
		}
	}
	if c.Gateway.ID != "" && !idPattern.MatchString(c.Gateway.ID) {
		add("gateway.id", "%q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", c.Gateway.ID)
	}
	if c.DataDir == "" {
		add("data_dir", "must not be empty")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	if c.Log.StatusInterval < 0 {
		add("log.status_interval", "must not be negative")
	}
	if d := c.ShutdownTimeout; d < time.Second || d > 5*time.Minute {
		add("shutdown_timeout", "%s: want between 1s and 5m", d)
	}
	c.Store.Validate(in("store"))
	sensors.Validate(c.Sensors, in("sensors"))
	c.MQTT.Validate(in("mqtt"))
	c.Uplink.Validate(in("uplink"))
	c.API.Validate(in("api"))
	c.Clock.Validate(in("clock"))
	for _, l := range []struct{ key, addr string }{{"mqtt.listen", c.MQTT.Listen}, {"mqtt.tls_listen", c.MQTT.TLSListen},
		{"mqtt.ws_listen", c.MQTT.WSListen}, {"api.listen", c.API.Listen}} {
		checkListen(l.key, l.addr, add)
	}
	config.CheckFiles(c, func(key, msg string) { add(key, "%s", msg) })
	return errs
}

// fieldError is one invalid value.
type fieldError struct {
	Path, Msg string
}

// storeOptions are the store's section, with where the store lives and
// whether anything will ever upload its readings (without an uplink,
// retention treats every reading as delivered).
func (c *Config) storeOptions() store.Options {
	return store.Options{Config: c.Store, Path: filepath.Join(c.DataDir, "fieldgate.db"), GatewayID: c.Gateway.ID,
		LocalOnly: c.Uplink.URL == ""}
}

// uplinkOptions are the uplink's section, with the version it reports.
func (c *Config) uplinkOptions() uplink.Options {
	return uplink.Options{Config: c.Uplink, Version: version}
}

// apiOptions are the API's section, with what it shows and where exports
// go.
func (c *Config) apiOptions() httpapi.Options {
	return httpapi.Options{Config: c.API, Version: version, GatewayName: c.Gateway.Name,
		ExportDir: filepath.Join(c.DataDir, "exports"), AutonomyWarning: c.Uplink.AutonomyWarning}
}
