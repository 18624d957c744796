// Command fieldgate-sink is a reference receiver for fieldgate's uplink, for
// trying fieldgate without a cloud and for fault-injection runs. It is a
// development tool, not a cloud backend: readings are kept in memory only
// and lost when it exits.
//
// It implements docs/cloud-api.yaml: PUT /v1/gateways/{id}/batches/{first}-{last}
// with a bearer token, deduplicating readings by id, answering a replayed
// batch as before and refusing (409) a key that comes back with a different
// body. GET /stats reports counts as JSON.
//
// Usage:
//
//	fieldgate-sink [-listen 127.0.0.1:8090] [-token T] [-unavailable 0.1 -retry-after 2s]
//	               [-reset 0.05] [-drop 0.05] [-delay 100ms] [-max-readings 200]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"fieldgate/uplink/sink"
)

func main() {
	if err := run(context.Background(), os.Args, os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "fieldgate-sink:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet("fieldgate-sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8090", "address to listen on")
	token := fs.String("token", "", "bearer token required (empty: any)")
	var f sink.Faults
	fs.Float64Var(&f.Unavailable, "unavailable", 0, "share of requests answered 503 with Retry-After")
	fs.DurationVar(&f.RetryAfter, "retry-after", time.Second, "Retry-After sent with injected 503s")
	fs.Float64Var(&f.Reset, "reset", 0, "share of requests whose connection is reset mid-body")
	fs.Float64Var(&f.DropResponse, "drop", 0, "share of batches stored and then left unanswered")
	fs.DurationVar(&f.Delay, "delay", 0, "delay before each answer")
	fs.IntVar(&f.MaxReadings, "max-readings", 0, "refuse larger batches with 413 (0: no limit)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	sk := sink.New(*token)
	sk.SetFaults(f)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: sk, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute}
	fmt.Fprintf(stdout, "fieldgate-sink listening on http://%s (development receiver; readings are kept in memory)\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	last := sk.Stats()
	for {
		select {
		case err := <-errc:
			return err
		case <-t.C:
			if s := sk.Stats(); s != last {
				log.Info("sink", "readings", s.Readings, "batches", s.Batches, "replays", s.Replays, "duplicates", s.Duplicate, "conflicts", s.Conflicts, "refused", s.Refused)
				last = s
			}
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s := sk.Stats()
			fmt.Fprintf(stdout, "fieldgate-sink: %d readings in %d batches, %d replays, %d conflicts\n", s.Readings, s.Batches, s.Replays, s.Conflicts)
			return srv.Shutdown(sctx)
		}
	}
}
