package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"fieldgate/cmd/fieldgate-cloud/receiver"
)

// serve runs the receiver until ctx ends, then drains in-flight requests.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fieldgate-cloud serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := databaseFlag(fs)
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on (:8080 for every interface)")
	certFile := fs.String("tls-cert", "", "TLS certificate (PEM); with -tls-key, serve HTTPS")
	keyFile := fs.String("tls-key", "", "TLS private key (PEM)")
	doMigrate := fs.Bool("migrate", true, "create or upgrade the schema at start (false: refuse to start on an older schema)")
	var opt receiver.Options
	var dbOpt receiver.DBOptions
	maxBody := fs.Int("max-body", 0, "largest compressed batch in bytes (413 above; the gateway splits); default and most: what -max-readings readings can take")
	fs.IntVar(&opt.MaxReadings, "max-readings", 10_000, "most readings in a batch (413 above)")
	fs.DurationVar(&opt.Timeout, "timeout", 20*time.Second, "longest a batch may take in the database once its body is read (503 after); keep it below the gateways' uplink.timeout (30s)")
	fs.DurationVar(&dbOpt.StatementTimeout, "statement-timeout", 15*time.Second, "PostgreSQL's statement_timeout for every statement: ends it on the server, below -timeout")
	fs.DurationVar(&dbOpt.LockTimeout, "lock-timeout", 5*time.Second, "PostgreSQL's lock_timeout: how long a statement or a migration step waits for a lock")
	fs.StringVar(&dbOpt.SynchronousCommit, "synchronous-commit", "on", "PostgreSQL's synchronous_commit for batches: on, remote_write, remote_apply (a synchronous standby applied it) or local; never off")
	fs.IntVar(&opt.MaxInFlight, "max-in-flight", 0, "batches handled at once; beyond, a request waits its turn (default: the pool's size, pool_max_conns in the URL)")
	fs.IntVar(&opt.MaxQueued, "max-queued", 0, "requests waiting for their turn at once; beyond, 503 at once (default: 16 × -max-in-flight)")
	fs.DurationVar(&opt.QueueWait, "queue-wait", 2*time.Second, "longest a request waits for its turn before 503; -queue-wait + -timeout stay below the gateways' uplink.timeout (30s)")
	fs.DurationVar(&opt.RetryAfter, "retry-after", 5*time.Second, "Retry-After sent with 503")
	opsListen := fs.String("ops-listen", "", "serve /healthz, /readyz and /metrics on this address only (default: beside the batches)")
	drain := fs.Duration("shutdown-timeout", 30*time.Second, "how long SIGTERM waits for requests in flight")
	debug := fs.Bool("debug", false, "log every refusal")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected %q", fs.Arg(0))
	}
	if (*certFile == "") != (*keyFile == "") {
		return errors.New("serve: -tls-cert and -tls-key go together")
	}
	if dbOpt.StatementTimeout >= opt.Timeout {
		return fmt.Errorf("serve: -statement-timeout %s must be below -timeout %s, so the server ends a statement before the receiver gives up on it", dbOpt.StatementTimeout, opt.Timeout)
	}
	if most := receiver.MaxBody(opt.MaxReadings); int64(*maxBody) > most {
		return fmt.Errorf("serve: -max-body %d is larger than any valid batch of -max-readings %d can be (%d)", *maxBody, opt.MaxReadings, most)
	}
	if err := needDatabase(*dbURL); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	opt.MaxBody, opt.Logger, opt.SeparateOps, dbOpt.Logger = int64(*maxBody), log, *opsListen != "", log
	db, err := waitOpen(ctx, *dbURL, *doMigrate, dbOpt, log)
	if err != nil {
		return err
	}
	defer db.Close()
	go partitionUpkeep(ctx, db, log)
	handler := receiver.NewServer(db, opt)
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 2 * time.Minute, WriteTimeout: opt.Timeout + time.Minute, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if *opsListen != "" {
		ops := &http.Server{Handler: handler.Ops(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute}
		oln, err := net.Listen("tcp", *opsListen)
		if err != nil {
			return fmt.Errorf("serve: -ops-listen: %w", err)
		}
		go func() { _ = ops.Serve(oln) }() // ends with the process
		defer ops.Close()
		fmt.Fprintf(stdout, "fieldgate-cloud operations on http://%s (/healthz, /readyz, /metrics)\n", oln.Addr())
	}
	scheme := "http"
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return fmt.Errorf("serve: TLS: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	fmt.Fprintf(stdout, "fieldgate-cloud listening on %s://%s (schema version %d)\n", scheme, ln.Addr(), receiver.SchemaVersion())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight", "timeout", *drain)
	sctx, cancel := context.WithTimeout(context.Background(), *drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// waitOpen opens the database, waiting while it cannot be reached or does
// not take connections yet: a replica may well start before its database
// (a restart, a deploy, a failover), or while it is full. Only what
// waiting cannot fix stops it: a wrong password, a missing database or
// permission, a schema newer than this receiver or one it may not migrate.
func waitOpen(ctx context.Context, url string, doMigrate bool, o receiver.DBOptions, log *slog.Logger) (*receiver.DB, error) {
	for {
		db, err := open(ctx, url, doMigrate, o)
		switch {
		case err == nil:
			return db, nil
		case permanent(err):
			return nil, err
		}
		log.Warn("waiting for the database", "err", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(time.Second):
		}
	}
}

// permanent reports whether a database error is one that waiting does not
// fix.
func permanent(err error) bool {
	var pe *pgconn.PgError
	switch {
	case errors.Is(err, receiver.ErrSchemaTooNew), errors.Is(err, errSchemaOld):
		return true
	case errors.As(err, &pe):
		// Invalid authorization, no such database, and syntax or access
		// rule violations (insufficient privilege, a migration's undefined
		// object): a person must act. Everything else (57P03 starting up,
		// 53300 too many connections, 08xxx connection trouble, 40xxx a
		// conflict, 55P03 a lock) passes with time.
		return pe.Code[:2] == "28" || pe.Code == "3D000" || pe.Code[:2] == "42"
	}
	return false
}

// errSchemaOld means the schema needs a migration that was not asked for.
var errSchemaOld = errors.New("the database's schema is older than this receiver's")

// open connects and migrates, or checks the schema is current.
func open(ctx context.Context, url string, doMigrate bool, o receiver.DBOptions) (*receiver.DB, error) {
	db, err := receiver.Open(ctx, url, o)
	if err != nil {
		return nil, err
	}
	if doMigrate {
		_, _, err = db.Migrate(ctx)
	} else {
		var v int
		v, err = db.Version(ctx)
		switch {
		case err != nil:
		case v > receiver.SchemaVersion():
			err = fmt.Errorf("%w (version %d, this receiver knows %d)", receiver.ErrSchemaTooNew, v, receiver.SchemaVersion())
		case v < receiver.SchemaVersion():
			err = fmt.Errorf("%w (version %d, this receiver needs %d): run fieldgate-cloud migrate", errSchemaOld, v, receiver.SchemaVersion())
		}
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// migrate runs "migrate".
func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fieldgate-cloud migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := databaseFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := needDatabase(*dbURL); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	db, err := receiver.Open(ctx, *dbURL, receiver.DBOptions{Logger: log})
	if err != nil {
		return err
	}
	defer db.Close()
	from, to, err := db.Migrate(ctx)
	if err != nil {
		return err
	}
	if from == to {
		fmt.Fprintf(stdout, "schema is at version %d: nothing to do\n", to)
	} else {
		fmt.Fprintf(stdout, "schema migrated from version %d to %d\n", from, to)
	}
	return nil
}
