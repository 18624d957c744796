package uplink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

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
}

// send PUTs one batch.
func (s *Sender) send(ctx context.Context, j *job) outcome {
	if j.body == nil {
		if err := s.load(j); err != nil {
			return outcome{j: j, err: err, local: true}
		}
	}
	token := s.o.Token
	if s.o.TokenFile != "" {
		b, err := os.ReadFile(s.o.TokenFile)
		if err != nil {
			return outcome{j: j, err: err, local: true}
		}
		token = strings.TrimSpace(string(b))
	}
	url := strings.TrimRight(s.o.URL, "/") + wire.BatchPath(s.gw, j.first, j.last)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(j.body))
	if err != nil {
		return outcome{j: j, err: err, local: true}
	}
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(j.body)), nil }
	h := req.Header
	h.Set("Authorization", "Bearer "+token)
	h.Set("Idempotency-Key", wire.IdempotencyKey(s.gw, j.first, j.last))
	h.Set("Content-Type", "application/json")
	h.Set("Content-Encoding", "gzip")
	h.Set("User-Agent", "fieldgate/"+s.o.Version+" (gateway "+s.gw+")")
	resp, err := s.o.Client.Do(req)
	if err != nil {
		return outcome{j: j, err: err}
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 300))          // only for the dead-letter reason
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	o := outcome{j: j, status: resp.StatusCode, reason: strings.TrimSpace(string(msg)), location: resp.Header.Get("Location")}
	if ra, ok := retryAfter(resp.Header.Get("Retry-After"), s.o.Now()); ok {
		o.retryAfter = ra
	}
	return o
}

// handle applies a send's outcome to the store and the schedule.
func (s *Sender) handle(o outcome) {
	j, now, log := o.j, s.o.Now(), s.o.Logger
	switch st := o.status; {
	case o.local:
		log.Error("uplink: cannot send batch", "first", j.first, "last", j.last, "err", o.err)
		s.retry(j, now.Add(s.o.BackoffBase))
	case st >= 200 && st < 300:
		if err := s.st.AckBatch(j.first); err != nil {
			// Delivered but not recorded: the resend is identical and the
			// cloud deduplicates it.
			log.Error("uplink: cannot record an acknowledged batch", "first", j.first, "err", err)
			s.retry(j, now.Add(s.o.BackoffBase))
			return
		}
		if s.failures > 0 {
			s.rebase()
		}
		s.failures, s.pauseUntil = 0, time.Time{}
		s.state.success(j.count, len(j.body))
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
		s.failures++
		wait := max(fullJitter(s.o.Rand, s.o.BackoffBase, s.o.BackoffMax, s.failures-1), s.o.AuthRetry)
		reason := fmt.Sprintf("redirected to %q: set uplink.url to the address it names (fieldgate never follows a redirect)", o.location)
		if s.state.paused("redirected", st, reason) {
			log.Error("uplink: the cloud redirects; sending paused until uplink.url is fixed, readings keep buffering", "status", st, "location", o.location)
		}
		s.retry(j, now.Add(wait))
	case st == http.StatusRequestEntityTooLarge && j.count > 1 && !j.deadLetter:
		s.split(j)
	case o.status == 0, st == http.StatusRequestTimeout, st == http.StatusTooManyRequests, st >= 500, st < 400:
		s.failures++
		wait := max(fullJitter(s.o.Rand, s.o.BackoffBase, s.o.BackoffMax, s.failures-1), o.retryAfter)
		reason := o.reason
		if o.err != nil {
			reason = o.err.Error()
		}
		if s.state.failure(st, reason) {
			log.Warn("uplink: cloud unreachable; retrying with backoff", "status", st, "err", reason, "retry_in", wait.Round(time.Millisecond))
		}
		s.retry(j, now.Add(wait))
	case j.deadLetter:
		log.Warn("uplink: dead letter refused again", "first", j.first, "last", j.last, "status", st, "reason", o.reason)
	default:
		if err := s.st.DeadLetterBatch(j.first, st, o.reason); err != nil {
			log.Error("uplink: cannot dead-letter a refused batch", "first", j.first, "err", err)
			s.retry(j, now.Add(s.o.BackoffBase))
			return
		}
		s.state.deadLettered()
		log.Warn("uplink: batch refused permanently; moved to dead letters", "first", j.first, "last", j.last, "status", st, "reason", o.reason)
	}
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

// split halves a batch the cloud refused as too large (413). Both halves
// are recorded before either is sent.
func (s *Sender) split(j *job) {
	rs, err := s.st.ReadingsAfter(j.first-1, j.count)
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
