package broker

import (
	"fmt"
	"time"
)

// Validate reports every option out of range to problem, naming the field
// ("Limits.MaxPacketSize" for a limit), for options as a configuration
// states them: each limit explicit (DefaultOptions gives them all), so a
// zero is a problem here, not "the default". New fills zero fields with
// defaults.
func (o Options) Validate(problem func(field, msg string)) {
	p := func(field, format string, args ...any) { problem(field, fmt.Sprintf(format, args...)) }
	if o.TLSListen != "" && (o.TLSCert == "" || o.TLSKey == "") {
		p("TLSListen", "needs tls_cert and tls_key")
	}
	l := o.Limits
	if l.MaxPacketSize < 1<<10 || l.MaxPacketSize > 1<<20 {
		p("Limits.MaxPacketSize", "%d bytes: want 1KiB to 1MiB", l.MaxPacketSize)
	}
	if l.MaxConnections < 1 || l.MaxConnections > 10000 {
		p("Limits.MaxConnections", "%d: want 1 to 10000", l.MaxConnections)
	}
	if l.MaxPending < 1 || l.MaxPending > 10000 {
		p("Limits.MaxPending", "%d: want 1 to 10000", l.MaxPending)
	}
	if l.ConnectTimeout < 100*time.Millisecond || l.ConnectTimeout > time.Minute {
		p("Limits.ConnectTimeout", "%s: want between 100ms and 1m", l.ConnectTimeout)
	}
	if l.MaxKeepalive < 10*time.Second || l.MaxKeepalive > 18*time.Hour {
		p("Limits.MaxKeepalive", "%s: want between 10s and 18h", l.MaxKeepalive)
	}
	if o.PublishRate <= 0 || o.PublishBurst < 1 {
		p("PublishRate", "%v per second with a burst of %d: want both above 0", o.PublishRate, o.PublishBurst)
	}
	if o.ConnectsPerMinute <= 0 || o.ConnectBurst < 1 {
		p("ConnectsPerMinute", "%v per minute with a burst of %d: want both above 0", o.ConnectsPerMinute, o.ConnectBurst)
	}
	if o.MaxQuantities < 1 || o.MaxQuantities > 10000 {
		p("MaxQuantities", "%d: want 1 to 10000", o.MaxQuantities)
	}
	if o.ReceiveMaximum < 1 {
		p("ReceiveMaximum", "%d: want 1 to 65535", o.ReceiveMaximum)
	}
	if o.MaxRetained < 1 {
		p("MaxRetained", "%d: want at least 1", o.MaxRetained)
	}
}
