package broker

// Refused breaks down by reason what the broker refused or dropped:
// payloads, logins, reconnects, publishes and sockets (for /metrics).
func (s Stats) Refused() map[string]uint64 {
	return map[string]uint64{
		"payload": s.Rejected, "login": s.AuthFailures, "login_throttled": s.AuthThrottled,
		"connect_limited": s.ConnectLimited, "quantity_cap": s.QuantityCapped,
		"acl": s.ACLDenied, "rate_limited": s.RateLimited, "store_failure": s.StoreFailures,
		"malformed": s.Guard.Malformed, "oversized": s.Guard.Oversized,
		"connect_timeout": s.Guard.ConnectTimeouts, "connection_limit": s.Guard.Refused,
	}
}

// RejectedTotal counts what devices and clients sent that the broker
// refused: payloads, logins, reconnects, publishes and malformed or
// oversized packets. (Commit failures and sockets refused at a limit are
// the gateway's own trouble, counted apart.)
func (s Stats) RejectedTotal() uint64 {
	return s.Rejected + s.AuthFailures + s.AuthThrottled + s.ConnectLimited + s.QuantityCapped +
		s.ACLDenied + s.RateLimited + s.Guard.Malformed + s.Guard.Oversized
}
