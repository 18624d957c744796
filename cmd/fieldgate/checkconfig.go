package main

import (
	"io"
	"strings"

	"fieldgate/cmd/fieldgate/internal/config"
)

// checkConfig validates the configuration and prints the effective one, with
// defaults filled in, so that a technician sees exactly what will run.
func checkConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := configFlags("check-config", args, getenv, stderr)
	if err != nil {
		return err
	}
	out, err := renderConfig(cfg)
	if err != nil {
		return err
	}
	_, err = io.WriteString(stdout, out)
	return err
}

// renderConfig prints the effective configuration as YAML, with a header
// saying where it came from.
func renderConfig(cfg *loadedConfig) (string, error) {
	var out strings.Builder
	out.WriteString("# fieldgate configuration from " + cfg.Source + "\n")
	if len(cfg.Env) > 0 {
		out.WriteString("# overridden by " + strings.Join(cfg.Env, ", ") + "\n")
	}
	if err := config.Render(&out, &cfg.Config); err != nil {
		return "", err
	}
	return out.String(), nil
}
