package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"fieldgate/cmd/fieldgate-cloud/receiver"
)

// readings runs "readings list|prune".
func readings(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("readings: want list or prune")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("fieldgate-cloud readings "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := databaseFlag(fs)
	keep := fs.Int("keep-months", 0, "prune: keep the readings received in the current month and this many months before it (at least 1)")
	if _, err := parseWithID(fs, args, false); err != nil {
		return err
	}
	if err := needDatabase(*dbURL); err != nil {
		return err
	}
	if sub == "prune" && *keep < 1 {
		return errors.New("readings prune: want -keep-months N, N at least 1")
	}
	db, err := open(ctx, *dbURL, false, receiver.DBOptions{})
	if err != nil {
		return err
	}
	defer db.Close()
	switch sub {
	case "list":
		ps, err := db.Partitions(ctx)
		if err != nil {
			return err
		}
		return listPartitions(stdout, ps)
	case "prune":
		cutoff := receiver.MonthsBack(time.Now(), *keep)
		dropped, err := db.DropBefore(ctx, cutoff)
		for _, p := range dropped {
			fmt.Fprintf(stdout, "dropped %s (%s)\n", p.Name, bytesOf(p.Bytes))
		}
		if err == nil && len(dropped) == 0 {
			fmt.Fprintf(stdout, "nothing received before %s to drop\n", cutoff.Format("2006-01-02"))
		}
		return err
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("readings: unknown command %q", sub)
}

// listPartitions prints the partitions of readings.
func listPartitions(w io.Writer, ps []receiver.Partition) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tRECEIVED FROM\tUNTIL\tSIZE")
	day := func(t time.Time, none string) string {
		if t.IsZero() {
			return none
		}
		return t.Format("2006-01-02")
	}
	for _, p := range ps {
		if p.Default() {
			fmt.Fprintf(tw, "%s\t(no month's)\t\t%s\n", p.Name, bytesOf(p.Bytes))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, day(p.From, "the start"), day(p.To, ""), bytesOf(p.Bytes))
	}
	return tw.Flush()
}

// bytesOf writes a size in MiB, or KiB below one.
func bytesOf(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// partitionUpkeep makes the coming months' partitions of readings, now
// and then every upkeepEvery, for as long as ctx lasts.
func partitionUpkeep(ctx context.Context, db *receiver.DB, log *slog.Logger) {
	for {
		created, err := db.EnsurePartitions(ctx, time.Now())
		if err != nil && ctx.Err() == nil {
			log.Error("readings partitions: the default partition takes a month's readings meanwhile", "err", err)
		}
		if len(created) > 0 {
			log.Info("readings partitions made", "partitions", created)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(upkeepEvery):
		}
	}
}

// upkeepEvery is how often a replica makes sure the coming months have
// their partitions (each month's is made two months ahead).
const upkeepEvery = 6 * time.Hour
