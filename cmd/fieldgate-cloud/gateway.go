package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"fieldgate/cmd/fieldgate-cloud/receiver"
)

// gateway runs "gateway add|list|rotate|remove".
func gateway(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("gateway: want add, list, rotate or remove")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("fieldgate-cloud gateway "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := databaseFlag(fs)
	name := fs.String("name", "", "a name for people (add)")
	id, err := parseWithID(fs, args, sub != "list")
	if err != nil {
		return err
	}
	if err := needDatabase(*dbURL); err != nil {
		return err
	}
	db, err := open(ctx, *dbURL, false, receiver.DBOptions{}) // never migrates: that is "migrate"'s, or a replica's at start
	if err != nil {
		return err
	}
	defer db.Close()
	switch sub {
	case "add":
		tok, err := db.AddGateway(ctx, id, *name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added gateway %s; its token (shown only now; set it as the gateway's uplink.token):\n%s\n", id, tok)
	case "rotate":
		tok, err := db.RotateGateway(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "new token for gateway %s (the old one no longer works):\n%s\n", id, tok)
	case "remove":
		if err := db.RemoveGateway(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed gateway %s; its readings stay\n", id)
	case "list":
		gws, err := db.Gateways(ctx)
		if err != nil {
			return err
		}
		return listGateways(stdout, gws, time.Now())
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("gateway: unknown command %q", sub)
	}
	return nil
}

// parseWithID parses flags around one positional gateway id (wanted or not).
func parseWithID(fs *flag.FlagSet, args []string, wantID bool) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	var id string
	if rest := fs.Args(); len(rest) > 0 && wantID {
		id = rest[0]
		if err := fs.Parse(rest[1:]); err != nil { // flags after the id
			return "", err
		}
	}
	switch {
	case wantID && id == "":
		return "", fmt.Errorf("%s: want a gateway id", fs.Name())
	case fs.NArg() > 0:
		return "", fmt.Errorf("%s: unexpected %q", fs.Name(), fs.Arg(0))
	}
	return id, nil
}

// listGateways prints the fleet, the gateways that need a look first:
// silent, then behind, then the rest.
func listGateways(w io.Writer, gws []receiver.Gateway, now time.Time) error {
	rank := map[string]int{"silent": 0, "behind": 1, "unreported": 2, "current": 3}
	slices.SortStableFunc(gws, func(a, b receiver.Gateway) int { return rank[a.State(now)] - rank[b.State(now)] })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATE\tLAST SEEN\tBACKLOG\tLAG\tHEALTH\tCLOCK\tAUTONOMY\tVERSION")
	for _, g := range gws {
		seen := "never"
		if g.LastSeen != nil {
			seen = ago(now.Sub(*g.LastSeen))
		}
		backlog, lag, health, clk, autonomy, version := "-", "-", "-", "-", "-", "-"
		if st := g.Status; st != nil {
			backlog, lag, health, clk, version = strconv.FormatInt(st.Backlog, 10), ago(st.Lag(now)), st.Health, st.Clock, st.Version
			if st.AutonomySeconds > 0 {
				autonomy = (time.Duration(st.AutonomySeconds) * time.Second).String()
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.ID, g.Name, g.State(now), seen, backlog, lag, health, clk, autonomy, version)
	}
	return tw.Flush()
}

// ago writes a duration to the second: "0s", "3m12s", "26h5m0s".
func ago(d time.Duration) string { return d.Round(time.Second).String() }
