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

// jitter returns a random wait in [0, d).
func jitter(rng *rand.Rand, d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rng.Int64N(int64(d)))
}

// maxRetryAfter caps how long a Retry-After may pause the uplink.
const maxRetryAfter = time.Hour

// retryAfter parses a Retry-After header, in seconds or as an HTTP date. A
// date is measured against the answer's own Date header when there is one
// (a Pi whose clock is three days behind must not pause for three days),
// and every wait is capped at maxRetryAfter.
func retryAfter(h, date string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return min(time.Duration(min(secs, int64(maxRetryAfter/time.Second)))*time.Second, maxRetryAfter), true
	}
	t, err := http.ParseTime(h)
	if err != nil {
		return 0, false
	}
	if d, err := http.ParseTime(strings.TrimSpace(date)); err == nil {
		now = d // the receiver's clock, against the receiver's date
	}
	return min(max(t.Sub(now), 0), maxRetryAfter), true
}
