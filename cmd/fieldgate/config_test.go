package main

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"fieldgate/cmd/fieldgate/daemontest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// envMap is a getenv backed by a map.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

var laptop = host{hasI2C: false}

func TestConfigGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		file string
		env  map[string]string
		host host
	}{
		{name: "empty", file: "empty.yaml", host: laptop},
		{name: "full", file: "full.yaml", host: laptop},
		{name: "partial", file: "partial.yaml", host: laptop},
		{name: "missing-on-a-pi", file: "does-not-exist.yaml", host: host{hasI2C: true},
			env: map[string]string{"STATE_DIRECTORY": "/var/lib/fieldgate:/var/lib/other"}},
		{name: "env", file: "partial.yaml", host: laptop, env: map[string]string{
			"FIELDGATE_STORE_MAX_SIZE":          "128MiB",
			"FIELDGATE_LOG_LEVEL":               "warn",
			"FIELDGATE_GATEWAY_NAME":            "Bench: top shelf # 2",
			"FIELDGATE_STORE_RETENTION_MAX_AGE": "48h",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join("testdata", "config", tc.file)
			cfg, err := loadConfig(path, false, envMap(tc.env), tc.host)
			if err != nil {
				t.Fatal(err)
			}
			got, err := renderConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "config", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("effective config differs from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}
			if strings.Contains(got, "s3cr3t") {
				t.Error("check-config printed the uplink token")
			}
			// What check-config prints must load again to the same config.
			again, err := loadConfig(daemontest.WriteConfig(t, got), true, envMap(nil), tc.host)
			if err != nil {
				t.Fatalf("printed config does not load: %v", err)
			}
			if again.Config.Store != cfg.Config.Store || again.Gateway != cfg.Gateway || len(again.Sensors) != len(cfg.Sensors) {
				t.Errorf("printed config loads differently:\n%+v\n%+v", again.Config, cfg.Config)
			}
		})
	}
}

func TestConfigRejections(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		env        map[string]string
		host       host
		want       []string // each must appear in the error
	}{
		{name: "unknown top-level key", yaml: "stroe:\n  max_size: 1GiB\n",
			want: []string{`:1: unknown key "stroe" (did you mean "store"?)`, "known keys: api, clock, data_dir, gateway, log, mqtt, sensors, shutdown_timeout, store, uplink"}},
		{name: "unknown nested key", yaml: "store:\n  max_sise: 1GiB\n",
			want: []string{`:2: unknown key "store.max_sise" (did you mean "max_size"?)`}},
		{name: "unknown key in a sensor", yaml: "sensors:\n  - name: a\n    drvier: sim\n",
			want: []string{`:3: unknown key "sensors[0].drvier" (did you mean "driver"?)`}},
		{name: "bad duration", yaml: "store:\n  commit_interval: fast\n",
			want: []string{`:2: store.commit_interval: "fast" is not a duration (write it like 500ms, 10s, 5m or 720h)`}},
		{name: "bad size", yaml: "store:\n  max_size: lots\n",
			want: []string{`:2: store.max_size: "lots" is not a size`}},
		{name: "size too small", yaml: "store:\n  max_size: 512KiB\n",
			want: []string{`:2: store.max_size: 512KiB: want at least 1MiB`}},
		{name: "full policy", yaml: "store:\n  full_policy: drop_newest\n",
			want: []string{`:2: store.full_policy: "drop_newest": want drop_oldest or reject_new`}},
		{name: "commit interval", yaml: "store:\n  commit_interval: 0s\n",
			want: []string{`store.commit_interval: 0s: want between 1ms and 1m`}},
		{name: "retention larger than store", yaml: "store:\n  max_size: 100MiB\n  retention:\n    max_size: 1GiB\n",
			want: []string{`:4: store.retention.max_size: 1GiB: want between 0 and store.max_size (100MiB)`}},
		{name: "negative age", yaml: "store:\n  retention:\n    max_age: -1h\n",
			want: []string{`store.retention.max_age: must not be negative`}},
		{name: "compact ratio", yaml: "store:\n  compact_ratio: 1\n",
			want: []string{`store.compact_ratio: 1: want at least 1.2`}},
		{name: "not a number", yaml: "store:\n  compact_ratio: lots\n",
			want: []string{"config.yaml:2: store.compact_ratio: cannot unmarshal !!str `lots` into float64"}},
		{name: "log level", yaml: "log:\n  level: loud\n",
			want: []string{`:2: log.level: "loud": want debug, info, warn or error`}},
		{name: "gateway id", yaml: "gateway:\n  id: north pump!\n",
			want: []string{`gateway.id: "north pump!": use 1 to 64 letters`}},
		{name: "shutdown timeout", yaml: "shutdown_timeout: 1h\n",
			want: []string{`shutdown_timeout: 1h0m0s: want between 1s and 5m`}},
		{name: "sensors", yaml: "sensors:\n  - name: a\n    driver: sim\n    interval: 10s\n  - name: a\n    driver: bme999\n    interval: 10ms\n  - name: Big\n    driver: sim\n    interval: 1s\n",
			want: []string{
				`:5: sensors[1].name: "a" is already the name of sensors[0]`,
				`sensors[1].driver: unknown driver "bme999" (known: aht20, am2320, bme280, hdc302x, mcp9808, scd4x, sht3x, sht4x, sim, tmp102)`,
				`sensors[1].interval: 10ms: want between 100ms and 24h`,
				`:8: sensors[2].name: "Big": use 1 to 32 lowercase letters`,
			}},
		{name: "I2C sensors", yaml: `sensors:
  - name: a
    driver: sht3x
    address: 0x80
    interval: 10s
  - name: b
    driver: sht3x
    address: 0x40
    interval: 10s
  - name: c
    driver: sht4x
    interval: 10s
  - name: d
    driver: sht3x
    interval: 10s
    offsets: {temperature: -0.4, pressure: 3}
  - name: e
    driver: scd4x
    interval: 1s
  - name: f
    driver: sim
    bus: 1
    interval: 10s
  - name: g
    driver: tmp102
    bus: 300
    interval: 10s
`,
			want: []string{
				`:4: sensors[0].address: 0x80 is out of range: 7-bit I2C addresses run from 0x03 to 0x77`,
				`:8: sensors[1].address: 0x40: a sht3x answers only at 0x44, 0x45`,
				`:13: sensors[3].address: bus 1 address 0x44 is already used by sensors[2] (c)`,
				`:16: sensors[3].offsets.pressure: sht3x does not measure pressure`,
				`:19: sensors[4].interval: 1s: want between 5s and 24h`,
				`sensors[5].driver: the simulated sensor has no bus or address; remove them`,
				`sensors[6].bus: 300: want a bus number from 0 to 255`,
			}},
		{name: "uplink", yaml: `uplink:
  url: ftp://example.com
  token_file: /nonexistent/token
  client_cert: /nonexistent/cert.pem
  in_flight: 0
  backoff_base: 2s
  backoff_max: 1s
`,
			want: []string{
				`:2: uplink.url: "ftp://example.com": want http(s)://host[:port][/path]`,
				`:3: uplink.token_file: stat /nonexistent/token: no such file or directory`,
				`uplink.client_key: mutual TLS needs both client_cert and client_key`,
				`:5: uplink.in_flight: 0: want 1 to 16`,
				`:7: uplink.backoff_max: 1s: want between backoff_base (2s) and 24h`,
			}},
		{name: "api", yaml: "api:\n  listen: 8080\n  cors_origins: [tablet.local]\n  trusted_proxies: [proxy]\n  rate_limit: 0\n  session_ttl: 1s\n  tls_cert: /nonexistent.pem\n",
			want: []string{
				`:2: api.listen: "8080": want host:port or :port`,
				`:3: api.cors_origins: "tablet.local": want an origin such as http://tablet.local:8080`,
				`:4: api.trusted_proxies: "proxy": want an IP address or a CIDR`,
				`:5: api.rate_limit: 0 per second`,
				`:6: api.session_ttl: 1s: want between 1m and 720h`,
				`api.tls_cert: tls_cert and tls_key go together`,
			}},
		{name: "listen ports", yaml: "mqtt:\n  listen: \":notaport\"\n  ws_listen: \":99999\"\napi:\n  listen: \"127.0.0.1:http\"\n",
			want: []string{
				`:2: mqtt.listen: ":notaport": the port must be a number from 1 to 65535 (0: any free port)`,
				`:3: mqtt.ws_listen: ":99999": the port must be a number from 1 to 65535 (0: any free port)`,
				`:5: api.listen: "127.0.0.1:http": the port must be a number from 1 to 65535 (0: any free port)`,
			}},
		{name: "clock", yaml: "clock:\n  trust: gps\n  upload_hold: 10s\n",
			want: []string{
				`:2: clock.trust: "gps": want ntp (no real-time clock: wait for NTP) or system`,
				`:3: clock.upload_hold: 10s: want between 1m and 720h`,
			}},
		{name: "uplink without token", yaml: "uplink:\n  url: https://example.com\n",
			want: []string{`uplink.token: the cloud needs a bearer token: set token or token_file`}},
		{name: "bad address", yaml: "sensors:\n  - name: a\n    driver: sht3x\n    address: 0xZZ\n    interval: 10s\n",
			want: []string{`:4: sensors[0].address: "0xZZ" is not an I2C address (write it like 0x44)`}},
		{name: "syntax error", yaml: "store:\n  max_size: [1\n", want: []string{"line 1: did not find expected ',' or ']'"}},
		{name: "two documents", yaml: "data_dir: a\n---\ndata_dir: b\n", want: []string{"line 2: a second YAML document"}},
		{name: "not a mapping", yaml: "- data_dir\n", want: []string{"line 1: the configuration must be a mapping"}},
		{name: "bad environment value", yaml: "", env: map[string]string{"FIELDGATE_STORE_MAX_SIZE": "huge", "FIELDGATE_SHUTDOWN_TIMEOUT": "soon"},
			want: []string{`FIELDGATE_STORE_MAX_SIZE: store.max_size: "huge": "huge" is not a size`, `FIELDGATE_SHUTDOWN_TIMEOUT: shutdown_timeout: "soon"`}},
		{name: "environment value out of range", yaml: "", env: map[string]string{"FIELDGATE_STORE_FULL_POLICY": "keep"},
			want: []string{`FIELDGATE_STORE_FULL_POLICY: store.full_policy: "keep": want drop_oldest or reject_new`}},
		// A typo in a variable's name was ignored with exit 0.
		{name: "unknown environment variable", yaml: "", host: host{env: []string{"FIELDGATE_STORE_MAX_SIZ", "FIELDGATE_CONFIG", "FIELDGATE_REQUIRE_ALL", "HOME"}},
			want: []string{`FIELDGATE_STORE_MAX_SIZ: not a configuration variable (did you mean FIELDGATE_STORE_MAX_SIZE?)`}},
		// check-config reported in rounds: unknown keys, then the first
		// value error, then the checks. Now every problem at once.
		{name: "every problem at once", yaml: "stor:\n  max_size: 1\nlog:\n  level: loud\n  status_interval: often\nstore:\n  compact_ratio: lots\n  commit_interval: later\n",
			env: map[string]string{"FIELDGATE_SHUTDOWN_TIMEOUT": "soon"}, host: host{env: []string{"FIELDGATE_SHUTDOWN_TIMEOUT", "FIELDGATE_UPLINK_UR"}},
			want: []string{`config.yaml:1: unknown key "stor" (did you mean "store"?)`, `config.yaml:5: log.status_interval: "often" is not a duration`,
				"config.yaml:7: store.compact_ratio: cannot unmarshal", `config.yaml:8: store.commit_interval: "later" is not a duration`,
				`config.yaml:4: log.level: "loud"`, `FIELDGATE_SHUTDOWN_TIMEOUT: shutdown_timeout: "soon"`,
				"FIELDGATE_UPLINK_UR: not a configuration variable (did you mean FIELDGATE_UPLINK_URL?)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(daemontest.WriteConfig(t, tc.yaml), true, envMap(tc.env), tc.host)
			if err == nil {
				t.Fatal("configuration accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestConfigMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	if _, err := loadConfig(missing, true, envMap(nil), laptop); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("a named config file that does not exist: %v, want an error", err)
	}
	cfg, err := loadConfig(missing, false, envMap(nil), laptop)
	if err != nil || cfg.Source != "embedded defaults" {
		t.Errorf("the default path missing: %v, %+v; want embedded defaults", err, cfg)
	}
}

func FuzzLoadConfig(f *testing.F) {
	for _, name := range []string{"full.yaml", "partial.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", "config", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("store: {max_size: [1, 2]}\nsensors: {a: b}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(path, true, envMap(nil), laptop)
		if err != nil {
			return
		}
		if errs := cfg.validate(); len(errs) > 0 {
			t.Fatalf("loadConfig accepted an invalid config: %v", errs)
		}
	})
}

// TestDefaultsAreValid: the embedded defaults pass every check, with an
// uplink configured too.
func TestDefaultsAreValid(t *testing.T) {
	cfg := defaultConfig(envMap(nil))
	cfg.Sensors = defaultSensors(laptop)
	for _, e := range cfg.validate() {
		t.Errorf("default %s: %s", e.Path, e.Msg)
	}
	cfg.Uplink.URL, cfg.Uplink.Token = "https://ingest.example.com", "t"
	for _, e := range cfg.validate() {
		t.Errorf("default with an uplink %s: %s", e.Path, e.Msg)
	}
}

// TestTestKnobsAreNotSettings: the test suite's FIELDGATE_TEST_* knobs
// never reach the check for misspelt settings.
func TestTestKnobsAreNotSettings(t *testing.T) {
	t.Setenv("FIELDGATE_TEST_SOME_KNOB", "1")
	t.Setenv("FIELDGATE_STORE_MAX_SIZ", "1GiB")
	env := detectHost().env
	if slices.Contains(env, "FIELDGATE_TEST_SOME_KNOB") || !slices.Contains(env, "FIELDGATE_STORE_MAX_SIZ") {
		t.Errorf("the variables checked as settings: %v", env)
	}
}
