package broker

import (
	"context"
	"log/slog"
	"strings"
)

// mochiLog routes mochi's own log records through the broker's logger:
// prefixed "mqtt: ", without the packet dump mochi attaches to a packet it
// could not process (a refused publish logged its whole payload, ~3 KB a
// line), with the device named so that the daemon's rate limit applies per
// device, and with mochi's start-up chatter at debug.
type mochiLog struct{ h slog.Handler }

func newMochiLog(l *slog.Logger) *slog.Logger { return slog.New(mochiLog{l.Handler()}) }

func (m mochiLog) level(l slog.Level) slog.Level {
	if l < slog.LevelWarn {
		return slog.LevelDebug
	}
	return l
}

// Enabled reports whether the record would be written at its new level.
func (m mochiLog) Enabled(ctx context.Context, l slog.Level) bool {
	return m.h.Enabled(ctx, m.level(l))
}

// Handle rewrites the record and passes it on.
func (m mochiLog) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, m.level(r.Level), "mqtt: "+r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "pk":
			return true // the packet, payload and all
		case "client":
			// Client ids are scoped "device/client-id" once admitted.
			if dev, _, ok := strings.Cut(a.Value.String(), "/"); ok {
				out.AddAttrs(slog.String("device", dev))
			}
		}
		out.AddAttrs(a)
		return true
	})
	return m.h.Handle(ctx, out)
}

// WithAttrs keeps the rewriting.
func (m mochiLog) WithAttrs(as []slog.Attr) slog.Handler { return mochiLog{m.h.WithAttrs(as)} }

// WithGroup keeps the rewriting.
func (m mochiLog) WithGroup(name string) slog.Handler { return mochiLog{m.h.WithGroup(name)} }
