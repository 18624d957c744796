package uplink

import (
	"fmt"
	"net"
	"net/url"
)

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
