package uplink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"fieldgate/store"
	"fieldgate/uplink/wire"
)

// outcome is how one send ended.
type outcome struct {
	j          *job
	status     int   // HTTP status; 0 when no response came
	err        error // network error, or a local one (local true)
	local      bool  // the batch could not even be built (store, token file)
	retryAfter time.Duration
	reason     string // the start of the response body, for dead letters
	location   string // where a 3xx points
	contract   bool   // the body is the contract's error shape: the receiver itself answered
	slow       bool   // timed out on an open connection: the link or the receiver is too slow for it
}

// send PUTs one batch.
func (s *Sender) send(ctx context.Context, j *job) outcome {
	if j.body == nil {
		if err := s.load(j); err != nil {
			return outcome{j: j, err: err, local: true}
		}
	}
	var connected atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { connected.Store(true) }})
	req, err := s.request(ctx, wire.BatchPath(s.gw, j.first, j.last), j.body)
	if err != nil {
		return outcome{j: j, err: err, local: true}
	}
	req.Header.Set("Idempotency-Key", wire.IdempotencyKey(s.gw, s.inc, j.first, j.last))
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := s.o.Client.Do(req)
	if err != nil {
		var ne net.Error
		return outcome{j: j, err: err, slow: connected.Load() && errors.As(err, &ne) && ne.Timeout()}
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))        // the contract's error body, or what a proxy said
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	o := outcome{j: j, status: resp.StatusCode, reason: shorten(strings.TrimSpace(string(msg)), 300),
		location: resp.Header.Get("Location"), contract: wire.IsErrorBody(msg)}
	if ra, ok := retryAfter(resp.Header.Get("Retry-After"), resp.Header.Get("Date"), s.o.Now()); ok {
		o.retryAfter = ra
	}
	return o
}

// request makes a PUT of body (JSON) to path under the uplink URL, with the
// token (read anew from its file, which may have been rotated) and who is
// asking.
func (s *Sender) request(ctx context.Context, path string, body []byte) (*http.Request, error) {
	token := s.o.Token
	if s.o.TokenFile != "" {
		b, err := os.ReadFile(s.o.TokenFile)
		if err != nil {
			return nil, err
		}
		token = strings.TrimSpace(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, strings.TrimRight(s.o.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "fieldgate/"+s.o.Version+" (gateway "+s.gw+")")
	return req, nil
}

// shorten cuts s to n bytes, on a rune boundary.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// handle applies a send's outcome to the store and the schedule.
func (s *Sender) handle(o outcome) {
	j, now, log := o.j, s.o.Now(), s.o.Logger
	switch st := o.status; {
	case o.local && j.deadLetter:
		// Discarded, or its readings gone, since the retry was asked:
		// nothing to retry (a person may ask again).
		s.retried(j)
		log.Error("uplink: cannot retry dead letter", "first", j.first, "last", j.last, "err", o.err)
	case o.local:
		log.Error("uplink: cannot send batch", "first", j.first, "last", j.last, "err", o.err)
		s.retry(j, now.Add(s.o.BackoffBase))
	case st >= 200 && st < 300:
		if j.deadLetter {
			s.retried(j)
		}
		if err := s.st.AckBatch(j.first); err != nil && !(j.deadLetter && errors.Is(err, store.ErrNotFound)) {
			// Delivered but not recorded: the resend is identical and the
			// cloud deduplicates it.
			log.Error("uplink: cannot record an acknowledged batch", "first", j.first, "err", err)
			s.retry(j, now.Add(s.o.BackoffBase))
			return
		}
		if s.failures > 0 {
			s.rebase()
		}
		s.failures, s.pauseUntil, s.refusedRun = 0, time.Time{}, 0
		since, first := s.state.success(j.count, len(j.body))
		if !since.IsZero() {
			o := s.state.outageEnded(since, s.Status().Backlog)
			log.Info("uplink: the cloud answers again; the backlog drains", "outage", o.Until.Sub(o.Since).Round(time.Second),
				"waiting", o.Waiting)
		}
		s.reportNow = s.reportNow || first || !since.IsZero() // the fleet view learns at once that the gateway is back
	case st == http.StatusUnauthorized || st == http.StatusForbidden:
		s.failures++
		wait := max(fullJitter(s.o.Rand, s.o.BackoffBase, s.o.BackoffMax, s.failures-1), s.o.AuthRetry)
		if s.state.paused("unauthorized", st, o.reason) {
			log.Error("uplink: the cloud refuses the token; sending paused, readings keep buffering", "status", st, "reason", o.reason)
		}
		s.retry(j, now.Add(wait))
	case st >= 300 && st < 400:
		// Following would resend the PUT as a body-less GET (301/302/303)
		// and take its answer for the batch's: never. The URL is wrong.
		reason := fmt.Sprintf("redirected to %q: set uplink.url to the address it names (fieldgate never follows a redirect)", o.location)
		s.misconfigured(j, "redirected", st, reason)
	case st == http.StatusRequestEntityTooLarge && j.count > 1 && !j.deadLetter:
		s.split(j)
	case st >= 400 && st < 500 && st != http.StatusRequestTimeout && st != http.StatusTooManyRequests && !s.refusal(o):
		// A 404, a 405, or a 4xx without the contract's error body is not
		// the receiver refusing this batch: a wrong path prefix, a load
		// balancer's default page, a WAF, http:// to a TLS port. Every
		// batch would get the same answer: dead-lettering them would turn
		// the whole backlog into dead letters. Pause and probe instead.
		reason := fmt.Sprintf("answered %d %s without the receiver's error body: check uplink.url (path prefix, scheme, port): %s",
			st, http.StatusText(st), o.reason)
		s.misconfigured(j, "misconfigured", st, reason)
	case st == http.StatusConflict && j.inProgress < maxInProgress && !j.deadLetter:
		// A receiver that answers 409 for "still in progress" (the IETF
		// Idempotency-Key draft) stores it on a later try: a few before the
		// batch counts as refused.
		j.inProgress++
		s.retry(j, now.Add(max(o.retryAfter, s.o.BackoffBase)+jitter(s.o.Rand, s.o.BackoffBase)))
	case o.status == 0, st == http.StatusRequestTimeout, st == http.StatusTooManyRequests, st >= 500, st < 400:
		s.failures++
		// Retry-After is a floor, and the jitter goes on top: a receiver's
		// fixed Retry-After would otherwise bring a whole fleet back in
		// the same second.
		wait := fullJitter(s.o.Rand, s.o.BackoffBase, s.o.BackoffMax, s.failures-1)
		if o.retryAfter > 0 {
			wait = o.retryAfter + jitter(s.o.Rand, max(o.retryAfter/2, s.o.BackoffBase))
		}
		reason := o.reason
		if o.err != nil {
			reason = o.err.Error()
		}
		if s.state.failure(st, reason) {
			log.Warn("uplink: cloud unreachable; readings keep buffering, probed at least every backoff_max", "status", st, "err", reason,
				"retry_in", wait.Round(time.Millisecond), "backoff_max", s.o.BackoffMax)
		}
		if o.slow && j.count > 1 && !j.deadLetter {
			// A link too slow for the batch (or a receiver too slow to
			// store it) within uplink.timeout fails it every time: its
			// halves go next, at once.
			if j.timeouts++; j.timeouts >= maxTimeouts {
				log.Warn("uplink: a batch timed out twice on an open connection; sending it in halves", "first", j.first, "last", j.last, "readings", j.count)
				s.split(j)
				return
			}
		}
		s.retry(j, now.Add(wait))
	case j.deadLetter:
		s.retried(j)
		log.Warn("uplink: dead letter refused again", "first", j.first, "last", j.last, "status", st, "reason", o.reason)
	default:
		if err := s.st.DeadLetterBatch(j.first, st, o.reason); err != nil {
			log.Error("uplink: cannot dead-letter a refused batch", "first", j.first, "err", err)
			s.retry(j, now.Add(s.o.BackoffBase))
			return
		}
		s.state.deadLettered()
		log.Warn("uplink: batch refused permanently; moved to dead letters", "first", j.first, "last", j.last, "status", st, "reason", o.reason)
		// A run of refusals is more likely the receiver's problem than
		// every batch's: pause before it dead-letters the backlog.
		if s.refusedRun++; s.refusedRun >= maxRefusedRun {
			s.refusedRun = 0
			s.failures++
			s.pauseUntil = now.Add(max(s.o.AuthRetry, fullJitter(s.o.Rand, s.o.BackoffBase, s.o.BackoffMax, s.failures-1)))
			s.state.paused("refusing", st, fmt.Sprintf("the receiver refused %d batches in a row (last: %s); sending paused, then probed", maxRefusedRun, o.reason))
			log.Error("uplink: the receiver refuses batch after batch; sending paused before more become dead letters", "refused_in_a_row", maxRefusedRun)
		}
	}
}

// Refusals. maxInProgress bounds the tries of a batch a receiver answers
// 409 as still in progress; maxRefusedRun is how many dead letters in a
// row pause sending; maxTimeouts is how many timeouts of a batch on an
// open connection split it.
const (
	maxInProgress = 3
	maxRefusedRun = 5
	maxTimeouts   = 2
)

// refusal reports whether o is the receiver refusing this very batch: one
// of the contract's refusals (400, 409, 422), with its error body.
func (s *Sender) refusal(o outcome) bool {
	switch o.status {
	case http.StatusBadRequest, http.StatusConflict, http.StatusUnprocessableEntity:
		return o.contract
	}
	return false
}

// misconfigured pauses sending on an answer only a configuration change
// can fix (state, with the answer's status and why), and probes again
// with j after a while; nothing is dead-lettered meanwhile.
func (s *Sender) misconfigured(j *job, state string, status int, reason string) {
	s.failures++
	wait := max(fullJitter(s.o.Rand, s.o.BackoffBase, s.o.BackoffMax, s.failures-1), s.o.AuthRetry)
	if s.state.paused(state, status, reason) {
		s.o.Logger.Error("uplink: sending paused until uplink.url is fixed; readings keep buffering", "state", state, "status", status, "reason", reason)
	}
	s.retry(j, s.o.Now().Add(wait))
}

// rebase runs when the cloud answers again after failures: what piled up
// during the outage becomes backlog (drained at the backlog rate, around
// the batches already recorded), and only readings stored from now on count
// as live, so fresh data is not stuck behind the outage's history.
func (s *Sender) rebase() {
	ob, err := s.st.Outbox()
	if err != nil || ob.LastSeq < s.liveNext {
		return
	}
	s.boundary, s.liveNext = ob.LastSeq, ob.LastSeq+1
}

// retry puts j first in line and waits until at before sending anything.
func (s *Sender) retry(j *job, at time.Time) {
	s.resend = append([]*job{j}, s.resend...)
	if at.After(s.pauseUntil) {
		s.pauseUntil = at
	}
	s.state.retried()
}

// split halves a batch the cloud refused as too large (413) or that timed
// out. Both halves are recorded before either is sent.
func (s *Sender) split(j *job) {
	rs, err := s.st.ReadingsBetween(j.first, j.last)
	if err != nil || len(rs) < 2 {
		s.o.Logger.Error("uplink: cannot split batch", "first", j.first, "err", err)
		s.retry(j, s.o.Now().Add(s.o.BackoffBase))
		return
	}
	mid := rs[len(rs)/2-1].Seq
	if err := s.st.SplitBatch(j.first, mid); err != nil {
		s.o.Logger.Error("uplink: cannot split batch", "first", j.first, "err", err)
		s.retry(j, s.o.Now().Add(s.o.BackoffBase))
		return
	}
	s.state.split()
	s.resend = append([]*job{{first: j.first, last: mid}, {first: mid + 1, last: j.last}}, s.resend...)
}
