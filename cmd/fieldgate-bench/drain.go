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
	"path/filepath"
	"text/tabwriter"
	"time"

	"fieldgate/store"
	"fieldgate/uplink"
	"fieldgate/uplink/sink"
)

// drainReport is what a drain measured.
type drainReport struct {
	Readings        int     `json:"readings"`
	Seconds         float64 `json:"seconds"`
	ReadingsPerSec  float64 `json:"readings_per_second"`
	Batches         int     `json:"batches"`
	WireBytesPerRdg float64 `json:"wire_bytes_per_reading"`
	JSONBytesPerRdg float64 `json:"json_bytes_per_reading"`
	Duplicates      int     `json:"duplicates"`
}

func drainCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fieldgate-bench drain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("readings", 100_000, "readings to store, then upload")
	batch := fs.Int("batch", 500, "readings per batch (uplink.batch_max_readings)")
	inFlight := fs.Int("in-flight", 3, "batches in flight (uplink.in_flight)")
	dir := fs.String("dir", "", "directory for the store (default a temporary one; put it on the disk to measure)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 {
		return errors.New("-readings: want at least 1")
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "fieldgate-drain-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	st, err := store.Open(store.Options{Path: filepath.Join(*dir, "drain.db"), Config: store.Config{MaxSize: 8 << 30}})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := fillStore(ctx, st, *n); err != nil {
		return err
	}
	rep, err := drain(ctx, st, *batch, *inFlight)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "readings\tseconds\treadings/s\tbatches\twire B/reading\tjson B/reading\tduplicates\t")
	fmt.Fprintf(tw, "%d\t%.2f\t%.0f\t%d\t%.1f\t%.1f\t%d\t\n", rep.Readings, rep.Seconds, rep.ReadingsPerSec, rep.Batches, rep.WireBytesPerRdg, rep.JSONBytesPerRdg, rep.Duplicates)
	return tw.Flush()
}

// fillStore appends n readings of a typical site (24 sources, temperature
// and humidity, every 10 s) ending now.
func fillStore(ctx context.Context, st *store.Store, n int) error {
	const chunk = 10_000
	start := time.Now().Add(-time.Duration(n/48) * 10 * time.Second)
	for i := 0; i < n; i += chunk {
		rs := make([]store.Reading, 0, chunk)
		for j := i; j < n && j < i+chunk; j++ {
			q, unit, v := "temperature", "Cel", 18+float64(j%70)/10
			if j%2 == 1 {
				q, unit, v = "humidity", "%RH", 40+float64(j%300)/10
			}
			rs = append(rs, store.Reading{Source: fmt.Sprintf("esp32-%02d", j/2%24), Quantity: q, Unit: unit, Value: v,
				Time: start.Add(time.Duration(j/48) * 10 * time.Second)})
		}
		if err := st.Append(ctx, rs...); err != nil {
			return err
		}
	}
	return nil
}

// drain serves the reference receiver on loopback and runs the uplink
// against it until the cloud acknowledged every stored reading.
func drain(ctx context.Context, st *store.Store, batch, inFlight int) (drainReport, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return drainReport{}, err
	}
	sk := sink.New("bench")
	srv := &http.Server{Handler: sk, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	s, err := uplink.New(st, uplink.Options{
		Logger: slog.New(slog.DiscardHandler), Config: uplink.Config{URL: "http://" + ln.Addr().String(), Token: "bench", BatchMaxReadings: batch, InFlight: inFlight, FlushInterval: 100 * time.Millisecond}})
	if err != nil {
		return drainReport{}, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	go func() { _ = s.Run(runCtx) }()
	last := st.Stats().LastSeq
	for {
		ob, err := st.Outbox()
		if err != nil {
			return drainReport{}, err
		}
		if ob.Acked >= last {
			break
		}
		if ctx.Err() != nil {
			return drainReport{}, ctx.Err()
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	ks := sk.Stats()
	n := float64(ks.Readings)
	return drainReport{Readings: ks.Readings, Seconds: took.Seconds(), ReadingsPerSec: n / took.Seconds(), Batches: ks.Batches,
		WireBytesPerRdg: float64(ks.BodyBytes) / n, JSONBytesPerRdg: float64(ks.RawBytes) / n, Duplicates: ks.Duplicate}, nil
}
