package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"fieldgate/cmd/fieldgate/internal/config"
	"fieldgate/sensors"
)

// loadedConfig is a validated configuration and where it came from.
type loadedConfig struct {
	Config
	// Source is the file read, or "embedded defaults".
	Source string
	// Env lists the FIELDGATE_* variables that overrode a value.
	Env []string
}

// envNotConfig are the FIELDGATE_* variables that are not configuration
// keys: the configuration's path, the boot id the unit passes, and the
// test suite's switch for tests that would skip (see CONTRIBUTING.md).
var envNotConfig = []string{"FIELDGATE_CONFIG", "FIELDGATE_BOOT_ID", "FIELDGATE_REQUIRE_ALL"}

// loadConfig reads path over the embedded defaults, applies FIELDGATE_*
// overrides and validates the result. A missing file is an error only if
// the user named it (explicit); otherwise the defaults apply.
func loadConfig(path string, explicit bool, getenv func(string) string, h host) (*loadedConfig, error) {
	lc := &loadedConfig{Config: defaultConfig(getenv), Source: path}
	where := config.Where{}
	// Every problem is listed at once: keys, values, environment
	// variables and the checks across them. A value that failed to decode
	// keeps its default, so the checks see no false trouble from it.
	var problems []string
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if problems, err = config.Decode(data, path, &lc.Config, where); err != nil {
			return nil, err
		}
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		lc.Source = "embedded defaults"
	default:
		return nil, fmt.Errorf("config: %w", err)
	}
	if _, listed := where["sensors"]; !listed {
		lc.Sensors = defaultSensors(h)
	}
	sensors.FillDefaults(lc.Sensors)
	used, known, envProblems := config.ApplyEnv(&lc.Config, getenv, where)
	lc.Env = used
	problems = append(problems, envProblems...)
	problems = append(problems, config.UnknownEnv(h.env, known, envNotConfig)...)
	for _, e := range lc.validate() {
		problems = append(problems, fmt.Sprintf("%s: %s: %s", where.Locate(e.Path), e.Path, e.Msg))
	}
	if len(problems) > 0 {
		return nil, &config.Error{Source: lc.Source, Problems: problems}
	}
	return lc, nil
}
