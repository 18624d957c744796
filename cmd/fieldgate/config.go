package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"fieldgate/store"
)

// defaultConfigPath is where the daemon looks for its configuration when no
// -config flag is given. A missing file there means "embedded defaults".
const defaultConfigPath = "/etc/fieldgate/config.yaml"

// Config is fieldgate's whole configuration: loaded once at start, validated,
// and passed down explicitly. Every field has a default (see defaultConfig).
type Config struct {
	Gateway GatewayConfig `yaml:"gateway"`
	// DataDir holds the store. Default $STATE_DIRECTORY (systemd), else
	// ./fieldgate-data.
	DataDir         string         `yaml:"data_dir"`
	Log             LogConfig      `yaml:"log"`
	Store           StoreConfig    `yaml:"store"`
	Sensors         []SensorConfig `yaml:"sensors"`
	MQTT            MQTTConfig     `yaml:"mqtt"`
	Uplink          UplinkConfig   `yaml:"uplink"`
	API             APIConfig      `yaml:"api"`
	Clock           ClockConfig    `yaml:"clock"`
	ShutdownTimeout Duration       `yaml:"shutdown_timeout"`
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
	StatusInterval Duration `yaml:"status_interval"`
}

// StoreConfig tunes the store; see store.Options for the meaning of each.
type StoreConfig struct {
	CommitInterval Duration        `yaml:"commit_interval"`
	SyncWindow     Duration        `yaml:"sync_window"`
	Head           HeadConfig      `yaml:"head"`
	MaxSize        ByteSize        `yaml:"max_size"`
	FullPolicy     string          `yaml:"full_policy"`
	Retention      RetentionConfig `yaml:"retention"`
	CompactRatio   float64         `yaml:"compact_ratio"`
}

// HeadConfig bounds the readings held in the log and in memory before a
// checkpoint moves them into the store file.
type HeadConfig struct {
	MaxReadings int      `yaml:"max_readings"`
	MaxBytes    ByteSize `yaml:"max_bytes"`
	MaxAge      Duration `yaml:"max_age"`
}

// RetentionConfig bounds how long uploaded readings are kept.
type RetentionConfig struct {
	MaxAge  Duration `yaml:"max_age"`
	MaxSize ByteSize `yaml:"max_size"`
}

// defaultConfig returns the embedded defaults. getenv supplies
// STATE_DIRECTORY, which systemd sets for StateDirectory=.
func defaultConfig(getenv func(string) string) Config {
	dataDir := "./fieldgate-data"
	if sd := getenv("STATE_DIRECTORY"); sd != "" {
		dataDir, _, _ = strings.Cut(sd, ":") // systemd lists several dirs separated by ':'
	}
	return Config{
		DataDir: dataDir,
		Log:     LogConfig{Level: "info", StatusInterval: Duration(time.Minute)},
		Store: StoreConfig{
			CommitInterval: Duration(store.DefaultCommitInterval),
			Head: HeadConfig{MaxReadings: store.DefaultHeadMaxReadings, MaxBytes: store.DefaultHeadMaxBytes,
				MaxAge: Duration(store.DefaultCheckpointInterval)},
			MaxSize:      store.DefaultMaxBytes,
			FullPolicy:   string(store.FullDropOldest),
			Retention:    RetentionConfig{MaxAge: Duration(30 * 24 * time.Hour)},
			CompactRatio: 2,
		},
		MQTT:            defaultMQTT(),
		Uplink:          defaultUplink(),
		API:             defaultAPI(),
		Clock:           defaultClock(),
		ShutdownTimeout: Duration(15 * time.Second),
	}
}

// host is what the configuration's defaults and limits depend on.
type host struct {
	is32bit bool     // the address space limits the store's size
	hasI2C  bool     // an I2C bus exists, so no simulated sensor by default
	env     []string // names of the FIELDGATE_* variables set, to catch typos
}

// detectHost looks at the machine the daemon runs on.
func detectHost() host {
	buses, _ := filepath.Glob("/dev/i2c-*") // the pattern is valid
	var env []string
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, envPrefix) {
			env = append(env, name)
		}
	}
	return host{is32bit: strconv.IntSize == 32, hasI2C: len(buses) > 0, env: env}
}

// defaultSensors is used when the configuration lists no sensors: a
// simulated one when the machine has no I2C bus (a laptop, CI), so that the
// gateway shows live data anywhere.
func defaultSensors(h host) []SensorConfig {
	if h.hasI2C {
		return nil
	}
	return []SensorConfig{{Name: "lab", Driver: "sim", Interval: Duration(10 * time.Second)}}
}

var (
	idPattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
)

// validate checks every value and returns one message per problem, each
// naming the key, so that a technician can fix the file in one pass.
func (c *Config) validate(h host) []fieldError {
	var errs []fieldError
	add := func(path, format string, args ...any) {
		errs = append(errs, fieldError{path, fmt.Sprintf(format, args...)})
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
	c.storeOptions().Validate(keyed(storeKeys, add))
	if h.is32bit && c.Store.MaxSize > 1536<<20 {
		add("store.max_size", "%s: a 32-bit system can map at most 1.5GiB", c.Store.MaxSize)
	}
	if d := time.Duration(c.ShutdownTimeout); d < time.Second || d > 5*time.Minute {
		add("shutdown_timeout", "%s: want between 1s and 5m", d)
	}
	validateSensors(c.Sensors, add)
	validateMQTT(c, add)
	validateUplink(c, add)
	validateAPI(c, add)
	validateClock(c.Clock, add)
	return errs
}

// storeOptions maps the configuration onto the store's options.
func (c *Config) storeOptions() store.Options {
	return store.Options{
		Path:               filepath.Join(c.DataDir, "fieldgate.db"),
		GatewayID:          c.Gateway.ID,
		CommitInterval:     time.Duration(c.Store.CommitInterval),
		SyncWindow:         time.Duration(c.Store.SyncWindow),
		HeadMaxReadings:    c.Store.Head.MaxReadings,
		HeadMaxBytes:       int64(c.Store.Head.MaxBytes),
		CheckpointInterval: time.Duration(c.Store.Head.MaxAge),
		MaxBytes:           int64(c.Store.MaxSize),
		FullPolicy:         store.FullPolicy(c.Store.FullPolicy),
		RetainAge:          time.Duration(c.Store.Retention.MaxAge),
		RetainBytes:        int64(c.Store.Retention.MaxSize),
		CompactRatio:       c.Store.CompactRatio,
		// Without an uplink nothing is ever acknowledged: retention then
		// treats every reading as delivered.
		LocalOnly: c.Uplink.URL == "",
	}
}

// storeKeys names the configuration key of each store option.
var storeKeys = map[string]string{"CommitInterval": "store.commit_interval", "SyncWindow": "store.sync_window",
	"HeadMaxReadings": "store.head.max_readings", "HeadMaxBytes": "store.head.max_bytes", "CheckpointInterval": "store.head.max_age",
	"MaxBytes": "store.max_size", "FullPolicy": "store.full_policy", "RetainAge": "store.retention.max_age",
	"RetainBytes": "store.retention.max_size", "CompactRatio": "store.compact_ratio"}

// keyed routes a component's problems, named by its option fields, to the
// configuration keys they come from.
func keyed(keys map[string]string, add func(path, format string, args ...any)) func(field, msg string) {
	return func(field, msg string) {
		path, ok := keys[field]
		if !ok {
			path = field // TestEveryOptionProblemHasAKey keeps this from happening
		}
		add(path, "%s", msg)
	}
}

// fieldError is one invalid value.
type fieldError struct {
	Path, Msg string
}
