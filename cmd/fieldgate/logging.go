package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// newLogger returns the daemon's logger: key=value lines on w, without
// timestamps under journald (which stamps every line itself), and with
// repeated warnings and errors rate-limited so that a broken sensor or a
// misbehaving node cannot fill the SD card.
func newLogger(w io.Writer, level string, getenv func(string) string) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(level)) // validated with the config; unknown means info
	opts := &slog.HandlerOptions{Level: lvl}
	if getenv("JOURNAL_STREAM") != "" {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(&limitHandler{
		Handler: slog.NewTextHandler(w, opts),
		lim:     newLimiter(5, time.Minute, time.Now),
	})
}

// limitHandler passes debug and info records through and lets each distinct
// warning or error (same message, same logger attributes such as the sensor,
// same device or source address) through at a limited rate: one node or
// one attacker cannot drown the others' warnings, nor write the SD card
// per packet. The next record that passes says how many were suppressed in
// between. What a peer sent (a topic, a device id, a path) is cut to
// maxPeerLen, so a line stays short whatever a client sent (a 16 KiB
// topic); the gateway's own messages and errors are cut only at maxAttrLen,
// so that "connection refused" at the end of an uplink error is seen.
type limitHandler struct {
	slog.Handler
	lim    *limiter
	prefix string // the logger's attributes, part of the rate-limit key
}

// maxPeerLen bounds each attribute that holds what a peer sent; maxAttrLen
// any other (an error may quote a payload: it too is bounded).
const (
	maxPeerLen = 80
	maxAttrLen = 1024
)

// peerAttrs are the attributes whose value a peer chose.
var peerAttrs = map[string]bool{"topic": true, "device": true, "user": true, "addr": true, "path": true, "value": true,
	"payload": true, "client": true, "origin": true, "host": true, "name": true, "quantities": true}

// keyAttrs are the attributes that make a warning distinct: who caused it.
var keyAttrs = map[string]bool{"device": true, "addr": true, "user": true, "source": true}

// Handle writes r unless it is a repeat over the limit.
func (h *limitHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	key := h.prefix + "\x00" + r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Value.Kind() == slog.KindString || a.Value.Kind() == slog.KindAny {
			limit := maxAttrLen
			if peerAttrs[a.Key] {
				limit = maxPeerLen
			}
			if v := a.Value.String(); len(v) > limit {
				a = slog.String(a.Key, strings.ToValidUTF8(v[:limit], "")+"…")
			}
		}
		if keyAttrs[a.Key] {
			key += "\x00" + a.Value.String()
		}
		out.AddAttrs(a)
		return true
	})
	if r.Level < slog.LevelWarn {
		return h.Handler.Handle(ctx, out)
	}
	ok, suppressed := h.lim.allow(key)
	if !ok {
		return nil
	}
	if suppressed > 0 {
		out.AddAttrs(slog.Int("suppressed", suppressed))
	}
	return h.Handler.Handle(ctx, out)
}

// WithAttrs keeps the rate limiter shared and adds the attributes to the key.
func (h *limitHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range as {
		b.WriteString(" " + a.String())
	}
	return &limitHandler{Handler: h.Handler.WithAttrs(as), lim: h.lim, prefix: b.String()}
}

// WithGroup keeps the rate limiter shared.
func (h *limitHandler) WithGroup(name string) slog.Handler {
	return &limitHandler{Handler: h.Handler.WithGroup(name), lim: h.lim, prefix: h.prefix + " [" + name + "]"}
}

// limiter is a token bucket per key.
type limiter struct {
	mu    sync.Mutex
	keys  map[string]*limitEntry
	every time.Duration
	burst int
	now   func() time.Time
}

type limitEntry struct {
	lim        *rate.Limiter
	suppressed int
}

// maxLimiterKeys bounds the limiter's memory; messages are constant strings,
// so this is reached only by a flood of distinct logger attributes.
const maxLimiterKeys = 1024

func newLimiter(burst int, every time.Duration, now func() time.Time) *limiter {
	return &limiter{keys: make(map[string]*limitEntry), every: every, burst: burst, now: now}
}

// allow reports whether a record with key may be written, and how many
// records with that key were suppressed since the last one written.
func (l *limiter) allow(key string) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.keys[key]
	if !ok {
		if len(l.keys) >= maxLimiterKeys {
			clear(l.keys)
		}
		e = &limitEntry{lim: rate.NewLimiter(rate.Every(l.every), l.burst)}
		l.keys[key] = e
	}
	if !e.lim.AllowN(l.now(), 1) {
		e.suppressed++
		return false, 0
	}
	n := e.suppressed
	e.suppressed = 0
	return true, n
}
