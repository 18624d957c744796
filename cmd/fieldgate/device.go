package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"fieldgate/broker"
	"fieldgate/store"
	"fieldgate/store/credentials"
)

const deviceUsage = `usage: fieldgate device add ID [-name NAME] [-admin] | list | remove ID | passwd ID  [-config FILE]

Manages the MQTT devices (ESP32 nodes) allowed to publish. The password is
generated and shown once. The store must not be open in a running fieldgate:
stop it first (sudo systemctl stop fieldgate).
`

// device manages devices in the store from the shell.
func device(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		_, _ = io.WriteString(stderr, deviceUsage) // the error below is what matters
		return errors.New("device: missing command")
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("fieldgate device "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file")
	name := fs.String("name", "", "display name (add)")
	admin := fs.Bool("admin", false, "may subscribe to everything, $SYS included (add)")
	id, err := parseWithArg(fs, rest)
	if err != nil {
		return err
	}
	needID := cmd == "add" || cmd == "remove" || cmd == "passwd"
	if needID && id == "" {
		return fmt.Errorf("device %s: which device? (fieldgate device %s ID)", cmd, cmd)
	}
	st, closeStore, err := openStoreCLI("device", *path, getenv, stderr)
	if err != nil {
		return err
	}
	return errors.Join(deviceCmd(st, cmd, id, *name, *admin, stdout, stderr), closeStore())
}

func deviceCmd(st *store.Store, cmd, id, name string, admin bool, stdout, stderr io.Writer) error {
	switch cmd {
	case "add":
		return deviceAdd(st, id, name, admin, stdout)
	case "passwd":
		return devicePasswd(st, id, stdout)
	case "remove":
		if err := st.DeleteDevice(id); err != nil {
			return err
		}
		_, err := fmt.Fprintf(stdout, "device %s removed; its readings stay in the store\n", id)
		return err
	case "list":
		return deviceList(st, stdout)
	}
	_, _ = io.WriteString(stderr, deviceUsage)
	return fmt.Errorf("device: unknown command %q", cmd)
}

func deviceAdd(st *store.Store, id, name string, admin bool, w io.Writer) error {
	if err := broker.ValidateDeviceID(id); err != nil {
		return err
	}
	if _, err := st.Device(id); err == nil {
		return fmt.Errorf("device %s exists; use fieldgate device passwd %s for a new password", id, id)
	}
	pw, hash, err := credentials.NewPassword()
	if err != nil {
		return err
	}
	if _, err := st.PutDevice(store.Device{ID: id, Name: name, PasswordHash: hash, Admin: admin, CreatedAt: time.Now().UTC()}); err != nil {
		return err
	}
	return printCredentials(w, "added", id, pw)
}

func devicePasswd(st *store.Store, id string, w io.Writer) error {
	pw, hash, err := credentials.NewPassword()
	if err != nil {
		return err
	}
	if err := st.UpdateDevice(id, func(d *store.Device) error { d.PasswordHash = hash; return nil }); err != nil {
		return err
	}
	return printCredentials(w, "has a new password", id, pw)
}

// printCredentials shows the password once, with ready-to-paste settings
// for the firmware technicians use.
func printCredentials(w io.Writer, what, id, pw string) error {
	_, err := fmt.Fprintf(w, `device %[1]s %[3]s. The password is shown only now:

  username: %[1]s
  password: %[2]s

Try it:
  mosquitto_pub -h GATEWAY -u %[1]s -P '%[2]s' -q 1 -t fieldgate/%[1]s/temperature -m 21.5

ESPHome (in the node's YAML):
  mqtt:
    broker: GATEWAY
    username: %[1]s
    password: "%[2]s"
    topic_prefix: %[1]s

Tasmota (console):
  Backlog MqttHost GATEWAY; MqttUser %[1]s; MqttPassword %[2]s; Topic %[1]s
`, id, pw, what)
	return err
}

func deviceList(st *store.Store, w io.Writer) error {
	ds, err := st.Devices()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tONLINE\tLAST SEEN\tMESSAGES\tREADINGS\tREJECTED\tLAST ERROR")
	for _, d := range ds {
		seen := "never"
		if !d.LastSeen.IsZero() {
			seen = d.LastSeen.UTC().Format(time.RFC3339)
		}
		id := d.ID
		if d.Admin {
			id += " (admin)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%d\t%d\t%d\t%s\n", id, d.Name, d.Online, seen, d.Messages, d.Readings, d.Rejected, d.LastError)
	}
	return tw.Flush()
}

// parseWithArg parses a subcommand's flags, which may come before or after
// its one argument (an id or name), and returns the argument.
func parseWithArg(fs *flag.FlagSet, args []string) (string, error) {
	var arg string
	for {
		if err := fs.Parse(args); err != nil {
			return "", err
		}
		if fs.NArg() == 0 {
			return arg, nil
		}
		if arg != "" {
			return "", fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		// The flag package stops at the first argument (or at a lone "-"):
		// take it and parse the flags after it too.
		arg, args = fs.Arg(0), fs.Args()[1:]
	}
}
