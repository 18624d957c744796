package uplink

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// fullJitter returns a random wait in [0, min(max, base·2^attempt)): the
// "full jitter" backoff, which spreads a fleet of gateways that lost the
// cloud together so they do not come back in step.
func fullJitter(rng *rand.Rand, base, max time.Duration, attempt int) time.Duration {
	ceiling := max
	if attempt < 62 && base<<attempt > 0 && base<<attempt < max {
		ceiling = base << attempt
	}
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(rng.Int64N(int64(ceiling)))
}

// retryAfter parses a Retry-After header, in seconds or as an HTTP date.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, 24*3600)) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
