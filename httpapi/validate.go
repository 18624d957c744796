package httpapi

import (
	"fmt"
	"net"
	"net/url"
	"time"
)

// Validate reports every option out of range to problem, naming the
// field, for options as a configuration states them: each limit explicit
// (DefaultOptions gives them all), so a zero is a problem here, not "the
// default". New fills zero fields with defaults.
func (o Options) Validate(problem func(field, msg string)) {
	p := func(field, format string, args ...any) { problem(field, fmt.Sprintf(format, args...)) }
	for _, origin := range o.CORSOrigins {
		u, err := url.Parse(origin)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			p("CORSOrigins", "%q: want an origin such as http://tablet.local:8080", origin)
		}
	}
	for _, proxy := range o.TrustedProxies {
		if net.ParseIP(proxy) == nil {
			if _, _, err := net.ParseCIDR(proxy); err != nil {
				p("TrustedProxies", "%q: want an IP address or a CIDR such as 10.0.0.0/8", proxy)
			}
		}
	}
	if o.RateLimit <= 0 || o.RateBurst < 1 {
		p("RateLimit", "%v per second with a burst of %d: want both above 0", o.RateLimit, o.RateBurst)
	}
	if o.MaxBodyBytes < 1<<10 || o.MaxBodyBytes > 16<<20 {
		p("MaxBodyBytes", "%d bytes: want 1KiB to 16MiB", o.MaxBodyBytes)
	}
	if o.SessionTTL < time.Minute || o.SessionTTL > 30*24*time.Hour {
		p("SessionTTL", "%s: want between 1m and 720h", o.SessionTTL)
	}
	if o.AutonomyWarning < time.Hour || o.AutonomyWarning > 365*24*time.Hour {
		p("AutonomyWarning", "%s: want between 1h and 8760h", o.AutonomyWarning)
	}
}
