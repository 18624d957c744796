// Command fieldgate-cloud is fieldgate's reference cloud receiver: it
// implements the uplink contract (docs/cloud-api.yaml) and stores every
// reading in PostgreSQL, exactly once. It keeps no state of its own, so any
// number of replicas can serve one database behind a load balancer.
//
// Usage:
//
//	DATABASE_URL=postgres://user:pass@host/db fieldgate-cloud [serve] [-listen 127.0.0.1:8080] [-tls-cert F -tls-key F]
//	fieldgate-cloud migrate
//	fieldgate-cloud gateway add ID [-name NAME]   prints the gateway's token, once
//	fieldgate-cloud gateway list
//	fieldgate-cloud gateway rotate ID             prints a new token; the old one stops working
//	fieldgate-cloud gateway remove ID             revokes it; its readings stay
//	fieldgate-cloud readings list                 the monthly partitions of readings
//	fieldgate-cloud readings prune -keep-months N drops the months received before the last N
//
// docs/cloud.md describes the schema, the metrics and how to run it.
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
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "fieldgate-cloud:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  fieldgate-cloud [serve] [flags]          receive batches (fieldgate-cloud serve -h lists the flags)
  fieldgate-cloud migrate                  create or upgrade the schema, then exit
  fieldgate-cloud gateway add ID [-name N] register a gateway and print its token
  fieldgate-cloud gateway list             list gateways
  fieldgate-cloud gateway rotate ID        print a new token for a gateway
  fieldgate-cloud gateway remove ID        revoke a gateway (its readings stay)
  fieldgate-cloud readings list            list the monthly partitions of readings
  fieldgate-cloud readings prune -keep-months N
                                           drop the months received before the last N
The database is DATABASE_URL (a postgres:// URL or "host=… dbname=…"), or -database.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, stdout, stderr)
	case "migrate":
		return migrate(ctx, args, stdout, stderr)
	case "gateway":
		return gateway(ctx, args, stdout, stderr)
	case "readings":
		return readings(ctx, args, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// databaseFlag adds -database to fs, defaulting to $DATABASE_URL.
func databaseFlag(fs *flag.FlagSet) *string {
	return fs.String("database", os.Getenv("DATABASE_URL"), "PostgreSQL connection string (default $DATABASE_URL)")
}

// needDatabase refuses an empty connection string with a hint.
func needDatabase(url string) error {
	if url == "" {
		return errors.New("no database: set DATABASE_URL (for example postgres://fieldgate@localhost/fieldgate) or pass -database")
	}
	return nil
}
