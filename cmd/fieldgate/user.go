package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"text/tabwriter"
	"time"

	"fieldgate/httpapi"
	"fieldgate/store"
	"fieldgate/store/credentials"
)

const userUsage = `usage: fieldgate user add NAME [-role viewer|technician|admin] | list | remove NAME | passwd NAME  [-config FILE]

Manages the accounts of the REST API and web page. The password is generated
and shown once. Roles: viewer reads; technician also manages devices, exports
and dead letters; admin also manages users and tokens. The store must not be
open in a running fieldgate: there, use the API (PUT /api/v1/users/NAME).
`

// user manages API accounts in the store from the shell.
func user(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		_, _ = io.WriteString(stderr, userUsage) // the error below is what matters
		return errors.New("user: missing command")
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("fieldgate user "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file")
	roleName := fs.String("role", "technician", "viewer, technician or admin (add)")
	name, err := parseWithArg(fs, rest)
	if err != nil {
		return err
	}
	switch cmd {
	case "add", "remove", "passwd":
		if name == "" {
			return fmt.Errorf("user %s: which user? (fieldgate user %s NAME)", cmd, cmd)
		}
	case "list":
	default:
		_, _ = io.WriteString(stderr, userUsage)
		return fmt.Errorf("user: unknown command %q", cmd)
	}
	role, ok := httpapi.ParseRole(*roleName)
	if !ok {
		return fmt.Errorf("user: role %q: want viewer, technician or admin", *roleName)
	}
	st, closeStore, err := openStoreCLI("user", *path, getenv, stderr)
	if err != nil {
		return err
	}
	return errors.Join(userCmd(st, cmd, name, role, stdout), closeStore())
}

func userCmd(st *store.Store, cmd, name string, role httpapi.Role, w io.Writer) error {
	switch cmd {
	case "add":
		if !httpapi.UserNamePattern.MatchString(name) {
			return fmt.Errorf("user name %q: use 1 to 64 letters, digits, '.', '_', '@' or '-'", name)
		}
		if _, err := st.User(name); err == nil {
			return fmt.Errorf("user %s exists; use fieldgate user passwd %s for a new password", name, name)
		}
		pw, hash, err := credentials.NewPassword()
		if err != nil {
			return err
		}
		if _, err := st.PutUser(store.User{Name: name, Role: role.String(), PasswordHash: hash, CreatedAt: time.Now().UTC()}); err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "user %s added with role %s. The password is shown only now:\n\n  %s\n", name, role, pw)
		return err
	case "passwd":
		pw, hash, err := credentials.NewPassword()
		if err != nil {
			return err
		}
		if err := st.UpdateUser(name, func(u *store.User) error { u.PasswordHash = hash; return nil }); err != nil {
			return err
		}
		forgetInitialAdmin(st, filepath.Dir(st.Path()), slog.New(slog.NewTextHandler(io.Discard, nil)))
		_, err = fmt.Fprintf(w, "user %s has a new password, shown only now:\n\n  %s\n", name, pw)
		return err
	case "remove":
		if err := st.DeleteUser(name); err != nil {
			return err
		}
		_, err := fmt.Fprintf(w, "user %s removed, with its tokens\n", name)
		return err
	}
	users, err := st.Users()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tCREATED")
	for _, u := range users {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Name, u.Role, u.CreatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}
