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

	"fieldgate/uplink/cloud"
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
	var opt cloud.Options
	maxBody := fs.Int("max-body", 16<<20, "largest compressed batch in bytes (413 above; the gateway splits)")
	fs.IntVar(&opt.MaxReadings, "max-readings", 10_000, "most readings in a batch (413 above)")
	fs.DurationVar(&opt.Timeout, "timeout", 30*time.Second, "longest a batch may take in the database (503 after)")
	fs.DurationVar(&opt.RetryAfter, "retry-after", 5*time.Second, "Retry-After sent with 503")
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
	if err := needDatabase(*dbURL); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	opt.MaxBody, opt.Logger = int64(*maxBody), log
	db, err := waitOpen(ctx, *dbURL, *doMigrate, log)
	if err != nil {
		return err
	}
	defer db.Close()
	srv := &http.Server{Handler: cloud.NewServer(db, opt), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 2 * time.Minute, WriteTimeout: opt.Timeout + time.Minute, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
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
	fmt.Fprintf(stdout, "fieldgate-cloud listening on %s://%s (schema version %d)\n", scheme, ln.Addr(), cloud.SchemaVersion())
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

// waitOpen opens the database, waiting while it cannot be reached: a
// replica may well start before its database (a restart, a deploy).
func waitOpen(ctx context.Context, url string, doMigrate bool, log *slog.Logger) (*cloud.DB, error) {
	for {
		db, err := open(ctx, url, doMigrate)
		var pe *pgconn.PgError
		switch {
		case err == nil:
			return db, nil
		case errors.As(err, &pe), errors.Is(err, cloud.ErrSchemaTooNew), errors.Is(err, errSchemaOld):
			return nil, err // the database answered: waiting changes nothing
		}
		log.Warn("waiting for the database", "err", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(time.Second):
		}
	}
}

// errSchemaOld means the schema needs a migration that was not asked for.
var errSchemaOld = errors.New("the database's schema is older than this receiver's")

// open connects and migrates, or checks the schema is current.
func open(ctx context.Context, url string, doMigrate bool) (*cloud.DB, error) {
	if doMigrate {
		return openMigrated(ctx, url)
	}
	db, err := cloud.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	v, err := db.Version(ctx)
	switch {
	case err != nil:
	case v > cloud.SchemaVersion():
		err = fmt.Errorf("%w (version %d, this receiver knows %d)", cloud.ErrSchemaTooNew, v, cloud.SchemaVersion())
	case v < cloud.SchemaVersion():
		err = fmt.Errorf("%w (version %d, this receiver needs %d): run fieldgate-cloud migrate", errSchemaOld, v, cloud.SchemaVersion())
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
	db, err := cloud.Open(ctx, *dbURL)
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
