package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"fieldgate/store"
)

const deadLettersUsage = `usage: fieldgate deadletters list | retry | discard ID  [-config FILE]

Manages the batches the cloud refused for good (dead letters): list them,
queue them all to be sent again (each as the same request as before, when
the gateway next runs), or give one up (its readings never reach the cloud
and count as dropped). The store must not be open in a running fieldgate:
while it runs, use the API or the page (docs/api.md).
`

// deadLetters manages the uplink's dead letters from the shell.
func deadLetters(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		_, _ = io.WriteString(stderr, deadLettersUsage) // the error below is what matters
		return errors.New("deadletters: missing command")
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("fieldgate deadletters "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file")
	id, err := parseWithArg(fs, rest)
	if err != nil {
		return err
	}
	var first uint64
	switch {
	case cmd == "discard" && id == "":
		return errors.New("deadletters discard: which one? (fieldgate deadletters discard ID, IDs from fieldgate deadletters list)")
	case cmd == "discard":
		if first, err = strconv.ParseUint(id, 10, 64); err != nil {
			return fmt.Errorf("deadletters discard: %q is not a dead letter's ID (a number from fieldgate deadletters list)", id)
		}
	case id != "":
		return fmt.Errorf("deadletters %s: unexpected argument %q", cmd, id)
	}
	if cmd != "list" && cmd != "retry" && cmd != "discard" {
		_, _ = io.WriteString(stderr, deadLettersUsage)
		return fmt.Errorf("deadletters: unknown command %q", cmd)
	}
	st, closeStore, err := openStoreCLI("deadletters", *path, getenv, stderr)
	if err != nil {
		return err
	}
	return errors.Join(deadLettersCmd(st, cmd, first, stdout), closeStore())
}

func deadLettersCmd(st *store.Store, cmd string, first uint64, w io.Writer) error {
	switch cmd {
	case "retry":
		n, err := st.RequeueDeadLetters()
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%d dead letters queued; the gateway sends them when it next runs\n", n)
		return err
	case "discard":
		if err := st.DiscardDeadLetter(first); err != nil {
			return err
		}
		_, err := fmt.Fprintf(w, "dead letter %d discarded: its readings will never reach the cloud (counted as dropped, dead_letter_discarded)\n", first)
		return err
	}
	ob, err := st.Outbox()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSEQS\tREADINGS\tSTATUS\tAT\tREASON")
	for _, d := range ob.DeadLetters {
		fmt.Fprintf(tw, "%d\t%d-%d\t%d\t%d\t%s\t%s\n", d.First, d.First, d.Last, d.Last-d.First+1, d.Status, d.At.UTC().Format(time.RFC3339), d.Reason)
	}
	return tw.Flush()
}
