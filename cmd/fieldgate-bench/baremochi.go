package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// mochiCmd serves MQTT on -listen with the broker library fieldgate is
// built on, run bare: mochi with its defaults and an allow-all hook,
// storing nothing. It is the floor of compare's ratios: what the library
// costs before fieldgate adds a hook, a decoder and a durable store. With
// -sync it syncs each publish before its PUBACK, one at a time (see
// syncHook), or with -group too, in group commits (see groupHook).
func mochiCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fieldgate-bench mochi", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("listen", "127.0.0.1:1883", "address to serve MQTT on")
	syncDir := fs.String("sync", "", "directory: write and fdatasync each QoS 1 or 2 publish in a file there before its PUBACK, one at a time (the library's own floor for one durable client), or with -group in group commits")
	group := fs.Bool("group", false, "with -sync: publishes that arrive while a sync runs share the next one (a group commit: the library's own floor for a durable broker with many clients)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *group && *syncDir == "" {
		return errors.New("mochi: -group needs -sync DIR")
	}
	s := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		return err
	}
	if *syncDir != "" {
		h, err := newDurableHook(*syncDir, *group)
		if err != nil {
			return err
		}
		defer h.close()
		if err := s.AddHook(h, nil); err != nil {
			return err
		}
	}
	if err := s.AddListener(listeners.NewTCP(listeners.Config{ID: "bench", Address: *addr})); err != nil {
		return err
	}
	if err := s.Serve(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "bare mochi serving on %s\n", *addr)
	<-ctx.Done()
	return s.Close()
}

// durableHook is a hook that makes bare mochi sync publishes to a file.
type durableHook interface {
	mqtt.Hook
	close() error
}

// newDurableHook returns a groupHook if group, else a syncHook.
func newDurableHook(dir string, group bool) (durableHook, error) {
	if group {
		return newGroupHook(dir)
	}
	return newSyncHook(dir)
}
