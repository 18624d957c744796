// Command fieldgate is the edge gateway daemon: it reads local I2C sensors,
// runs the MQTT broker ESP32 nodes publish to, keeps every reading durably
// in its store, serves the local REST API, and replays readings to the
// cloud.
//
// Usage:
//
//	fieldgate [run] [-config FILE]   run the gateway (the default)
//	fieldgate check-config [-config FILE]
//	                                 validate and print the effective configuration
//	fieldgate scan [-bus N]          list I2C devices and print a config snippet
//	fieldgate device add|list|remove|passwd
//	                                 manage the MQTT devices
//	fieldgate user add|list|remove|passwd
//	                                 manage the API's accounts
//	fieldgate deadletters list|retry|discard
//	                                 manage the batches the cloud refused
//	fieldgate version                print version, commit and build date
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"fieldgate/store/clock"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "fieldgate:", err)
			os.Exit(1)
		}
	}
}

const usage = `usage: fieldgate [command] [-config FILE]

commands:
  run            run the gateway (the default)
  check-config   validate the configuration and print it with defaults filled in
  scan [-bus N]  list the I2C devices that answer and print a sensors: snippet
  device add ID | list | remove ID | passwd ID
                 manage the MQTT devices (ESP32 nodes); a password is shown once
  user add NAME [-role R] | list | remove NAME | passwd NAME
                 manage the API accounts (viewer, technician, admin)
  deadletters list | retry | discard ID
                 the batches the cloud refused for good: list them, send them
                 all again, or give one up
  version        print version, commit and build date

The configuration is read from -config, else $FIELDGATE_CONFIG, else
/etc/fieldgate/config.yaml; with none of them present the gateway runs on
embedded defaults. Any scalar key can be overridden by an environment
variable: store.max_size is FIELDGATE_STORE_MAX_SIZE.
`

// run is the whole program, with its environment passed in so tests can call
// it: it owns signal handling and returns when the command is done.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, rest := "run", args[1:]
	if len(rest) > 0 && rest[0] != "" && rest[0][0] != '-' {
		cmd, rest = rest[0], rest[1:]
	}
	switch cmd {
	case "run":
		return runDaemon(ctx, stop, rest, getenv, stderr, clock.System{})
	case "check-config":
		return checkConfig(rest, getenv, stdout, stderr)
	case "scan":
		return scan(rest, stdout, stderr)
	case "device":
		return device(rest, getenv, stdout, stderr)
	case "user":
		return user(rest, getenv, stdout, stderr)
	case "deadletters":
		return deadLetters(rest, getenv, stdout, stderr)
	case "version":
		return printVersion(stdout)
	case "help":
		_, err := io.WriteString(stdout, usage)
		return err
	default:
		_, _ = io.WriteString(stderr, usage) // the error below is what matters
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// configFlags parses -config and loads the configuration it names.
func configFlags(name string, args []string, getenv func(string) string, stderr io.Writer) (*loadedConfig, error) {
	fs := flag.NewFlagSet("fieldgate "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { _, _ = io.WriteString(stderr, usage) }
	path := fs.String("config", "", "configuration file (default $FIELDGATE_CONFIG or "+defaultConfigPath+")")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%s: unexpected argument %q", name, fs.Arg(0))
	}
	explicit := *path != ""
	if !explicit {
		*path = getenv("FIELDGATE_CONFIG")
		explicit = *path != ""
	}
	if !explicit {
		*path = defaultConfigPath
	}
	return loadConfig(*path, explicit, getenv, detectHost())
}
