package uplink

import (
	"fmt"
	"net"
	"net/url"
	"time"
)

// Validate reports every option out of range to problem, naming the
// field, for options as a configuration states them: each limit explicit
// (DefaultOptions gives them all), so a zero is a problem here, not "the
// default". New fills zero fields with defaults and checks only the URL.
func (o Options) Validate(problem func(field, msg string)) {
	p := func(field, format string, args ...any) { problem(field, fmt.Sprintf(format, args...)) }
	if err := checkURL(o.URL); err != nil {
		p("URL", "%v", err)
	}
	switch {
	case o.Token == "" && o.TokenFile == "":
		p("Token", "the cloud needs a bearer token: set token or token_file")
	case o.Token != "" && o.TokenFile != "":
		p("TokenFile", "set token or token_file, not both")
	}
	if (o.ClientCert == "") != (o.ClientKey == "") {
		p("ClientKey", "mutual TLS needs both client_cert and client_key")
	}
	if o.MaxReadings < 1 || o.MaxReadings > 10000 {
		p("MaxReadings", "%d: want 1 to 10000", o.MaxReadings)
	}
	if o.MaxBytes < 1<<10 || o.MaxBytes > 16<<20 {
		p("MaxBytes", "%d bytes: want 1KiB to 16MiB", o.MaxBytes)
	}
	if o.InFlight < 1 || o.InFlight > 16 {
		p("InFlight", "%d: want 1 to 16", o.InFlight)
	}
	if o.BacklogRate < 0 {
		p("BacklogRate", "%v: want 0 (no cap) or more readings/s", o.BacklogRate)
	}
	for _, f := range []struct {
		field string
		d     time.Duration
	}{{"FlushInterval", o.FlushInterval}, {"BackoffBase", o.BackoffBase}, {"Timeout", o.Timeout}} {
		if f.d < 10*time.Millisecond || f.d > 5*time.Minute {
			p(f.field, "%s: want between 10ms and 5m", f.d)
		}
	}
	if o.BackoffMax < o.BackoffBase || o.BackoffMax > 24*time.Hour {
		p("BackoffMax", "%s: want between backoff_base (%s) and 24h", o.BackoffMax, o.BackoffBase)
	}
}

// checkURL accepts an http(s) URL with a host and an optional path: a
// query or a fragment would end up in the middle of every batch's URL, and
// credentials belong in the token, not in a URL that gets logged.
func checkURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("%q: want http(s)://host[:port][/path]", Redacted(s))
	case u.User != nil:
		return fmt.Errorf("%q: no user or password in the URL; the bearer token is token or token_file", Redacted(s))
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Errorf("%q: no query in the URL: batches go to {url}/v1/gateways/…", Redacted(s))
	case u.Fragment != "":
		return fmt.Errorf("%q: no fragment (#…) in the URL", Redacted(s))
	}
	return nil
}

// PlainHTTP reports whether the URL sends batches unencrypted to another
// host than this one: worth a warning (tokens and readings cross the
// network in clear).
func PlainHTTP(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// Redacted is s with any user information replaced by "…": a URL as it
// may be logged.
func Redacted(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = url.User("…")
	return u.String()
}
