package httpapi

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"fieldgate/store"
)

// readingBody is a reading on the wire.
type readingBody struct {
	ID       string    `json:"id"`
	Seq      uint64    `json:"seq"`
	Source   string    `json:"source"`
	Quantity string    `json:"quantity"`
	Value    float64   `json:"value"`
	Unit     string    `json:"unit"`
	Time     time.Time `json:"time"`
	Clock    string    `json:"clock"`
}

func (s *Server) readingView(r store.Reading) readingBody {
	return readingView(s.st.GatewayID(), r)
}

func readingView(gateway string, r store.Reading) readingBody {
	return readingBody{ID: readingID(gateway, r.Seq), Seq: r.Seq, Source: r.Source, Quantity: r.Quantity,
		Value: r.Value, Unit: r.Unit, Time: r.Time.UTC(), Clock: r.Clock.String()}
}

// sourceBody is a source: a local sensor or an MQTT device, with the newest
// reading of each quantity it measures.
type sourceBody struct {
	ID   string `json:"id"`
	Kind string `json:"kind"` // sensor, device or other
	Name string `json:"name,omitempty"`
	// State is the sensor's health (starting, ok, degraded, failing), a
	// device's waiting, ok, late or silent (see deviceState), or unknown;
	// StateReason says a device's in words.
	State       string        `json:"state"`
	StateReason string        `json:"state_reason,omitempty"`
	LastError   string        `json:"last_error,omitempty"`
	LastSeen    time.Time     `json:"last_seen,omitzero"`
	Frozen      []string      `json:"frozen,omitempty"`
	Latest      []readingBody `json:"latest"`
	Readings    string        `json:"readings"`
}

// sources gathers every source the gateway knows, sorted by id: those with
// readings, the configured sensors and the registered devices.
func (s *Server) sources() (map[string]*sourceBody, []string, error) {
	all := map[string]*sourceBody{}
	get := func(id string) *sourceBody {
		b, ok := all[id]
		if !ok {
			b = &sourceBody{ID: id, Kind: "other", State: "unknown", Latest: []readingBody{}, Readings: "/api/v1/sources/" + id + "/readings"}
			all[id] = b
		}
		return b
	}
	if s.deps.Sensors != nil {
		for _, h := range s.deps.Sensors.Health() {
			b := get(h.Source)
			b.Kind, b.Name, b.State, b.LastError, b.LastSeen, b.Frozen = "sensor", h.Name, string(h.State), h.LastError, h.LastGood.UTC(), h.Frozen
		}
	}
	devs, err := s.devices()
	if err != nil {
		return nil, nil, err
	}
	for _, d := range devs {
		b := get(d.ID)
		b.Kind, b.Name, b.LastError, b.LastSeen = "device", d.Name, d.LastError, d.LastSeen.UTC()
		b.State, b.StateReason = deviceState(d, s.opts.Now())
	}
	for _, k := range s.st.Series() {
		r, ok, err := s.st.Latest(k)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			b := get(k.Source)
			b.Latest = append(b.Latest, s.readingView(r))
		}
	}
	ids := make([]string, 0, len(all))
	for id := range all {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return all, ids, nil
}

func (s *Server) listSources(c *gin.Context) {
	all, ids, err := s.sources()
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]*sourceBody, 0, len(ids))
	for _, id := range ids {
		out = append(out, all[id])
	}
	reply(c, http.StatusOK, cacheRevalidate, map[string]any{"sources": out})
}

func (s *Server) getSource(c *gin.Context) {
	all, _, err := s.sources()
	if err != nil {
		s.fail(c, err)
		return
	}
	b, ok := all[c.Param("id")]
	if !ok {
		s.fail(c, errorf(http.StatusNotFound, "no source %q: GET /api/v1/sources lists them", c.Param("id")))
		return
	}
	reply(c, http.StatusOK, cacheRevalidate, b)
}

// seriesQuery reads quantity, from and to, shared by readings and series.
// A source measuring one quantity needs no quantity parameter.
func (s *Server) seriesQuery(c *gin.Context, defaultFrom time.Duration) (store.Query, error) {
	id := c.Param("id")
	var quantities []string
	for _, k := range s.st.Series() {
		if k.Source == id {
			quantities = append(quantities, k.Quantity)
		}
	}
	q := store.Query{Source: id, Quantity: c.Query("quantity")}
	switch {
	case len(quantities) == 0:
		return q, errorf(http.StatusNotFound, "source %q has no readings", id)
	case q.Quantity == "" && len(quantities) == 1:
		q.Quantity = quantities[0]
	case q.Quantity == "":
		return q, &httpError{Status: http.StatusBadRequest, Errors: []apiError{{Code: http.StatusBadRequest, Field: "quantity",
			Message: "quantity: source " + id + " measures " + strings.Join(quantities, ", ") + "; say which one"}}}
	case !slices.Contains(quantities, q.Quantity):
		return q, errorf(http.StatusNotFound, "source %q has no %s readings (it has %s)", id, q.Quantity, strings.Join(quantities, ", "))
	}
	now := s.opts.Now()
	var err error
	if q.From, err = parseTime(c, "from", now); err != nil {
		return q, err
	}
	if q.To, err = parseTime(c, "to", now); err != nil {
		return q, err
	}
	if q.From.IsZero() && defaultFrom > 0 {
		q.From = now.Add(-defaultFrom)
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return q, fieldError(http.StatusBadRequest, "from", "must be before to")
	}
	return q, nil
}

// parseTime reads an RFC 3339 time or a negative duration relative to now
// ("-24h") from the query parameter name; absent is the zero time.
func parseTime(c *gin.Context, name string, now time.Time) (time.Time, error) {
	v := c.Query(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if d, derr := time.ParseDuration(v); strings.HasPrefix(v, "-") && derr == nil {
		t, err = now.Add(d), nil
	}
	if err != nil {
		return time.Time{}, fieldError(http.StatusBadRequest, name, "must be an RFC 3339 time (2026-11-22T08:00:00Z) or a negative duration (-24h), not "+quote(v))
	}
	if t.Before(store.MinTime) || t.After(store.MaxTime) {
		return time.Time{}, fieldError(http.StatusBadRequest, name, quote(v)+" is outside the times the store can hold ("+
			store.MinTime.Format(time.RFC3339)+" to "+store.MaxTime.Format(time.RFC3339)+")")
	}
	return t.UTC(), nil
}

func fieldError(status int, field, msg string) *httpError {
	return &httpError{Status: status, Errors: []apiError{{Code: status, Field: field, Message: field + ": " + msg}}}
}

// quote shortens and quotes a client value for an error message.
func quote(v string) string {
	if len(v) > 64 {
		v = v[:64] + "…"
	}
	return `"` + strings.ToValidUTF8(v, "?") + `"`
}

// listReadings answers one page of a series' readings, oldest first.
func (s *Server) listReadings(c *gin.Context) {
	pg, err := parsePage(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	q, err := s.seriesQuery(c, 0)
	if err != nil {
		s.fail(c, err)
		return
	}
	total, err := s.st.Count(q)
	if err != nil {
		s.fail(c, err)
		return
	}
	last := max(1, (total+pg.PerPage-1)/pg.PerPage)
	if pg.Page > last {
		s.fail(c, coded(http.StatusNotFound, codePastEnd, "page "+itoa(pg.Page)+" is past the last page ("+itoa(last)+")"))
		return
	}
	q.Offset, q.Limit = (pg.Page-1)*pg.PerPage, pg.PerPage
	out := make([]readingBody, 0, min(pg.PerPage, total))
	if err := s.st.Walk(q, func(r store.Reading) error { out = append(out, s.readingView(r)); return nil }); err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Link", pg.links(c.Request.URL, last))
	c.Header("X-Total-Count", itoa(total))
	reply(c, http.StatusOK, cacheRevalidate, map[string]any{
		"source": q.Source, "quantity": q.Quantity, "page": pg.Page, "per_page": pg.PerPage,
		"total": total, "pages": last, "readings": out,
	})
}

// MaxSeriesPoints caps the steps of a series query.
const MaxSeriesPoints = 10000

type pointBody struct {
	Time     time.Time `json:"time"`
	Count    int       `json:"count"`
	Min      float64   `json:"min"`
	Avg      float64   `json:"avg"`
	Max      float64   `json:"max"`
	Unsynced int       `json:"unsynced,omitempty"`
}

// series answers min/avg/max per step, computed in the store: a chart of a
// day is a few hundred points whatever the sampling rate.
func (s *Server) series(c *gin.Context) {
	q, err := s.seriesQuery(c, 24*time.Hour)
	if err != nil {
		s.fail(c, err)
		return
	}
	to := q.To
	if to.IsZero() {
		to = s.opts.Now().UTC()
	}
	step := time.Duration(0)
	if v := c.Query("step"); v != "" {
		if step, err = time.ParseDuration(v); err != nil || step < time.Second {
			s.fail(c, fieldError(http.StatusBadRequest, "step", "must be a duration of at least 1s (\"5m\"), not "+quote(v)))
			return
		}
	} else {
		step = niceStep(to.Sub(q.From) / 500)
	}
	if to.Sub(q.From)/step > MaxSeriesPoints {
		s.fail(c, fieldError(http.StatusBadRequest, "step", "gives more than "+itoa(MaxSeriesPoints)+" points for this range; use a larger step"))
		return
	}
	sums, err := s.st.Summarize(q, step)
	if err != nil {
		s.fail(c, err)
		return
	}
	unit := ""
	if r, ok, err := s.st.Latest(store.SeriesKey{Source: q.Source, Quantity: q.Quantity}); err == nil && ok {
		unit = r.Unit
	}
	points := make([]pointBody, len(sums))
	for i, x := range sums {
		points[i] = pointBody{Time: x.Start.UTC(), Count: x.Count, Min: x.Min, Avg: x.Avg, Max: x.Max, Unsynced: x.Unsynced}
	}
	reply(c, http.StatusOK, cacheRevalidate, map[string]any{
		"source": q.Source, "quantity": q.Quantity, "unit": unit, "from": q.From.UTC(), "to": to,
		"step": step.String(), "points": points,
	})
}

// niceStep rounds d up to a step a chart reader recognises.
func niceStep(d time.Duration) time.Duration {
	for _, n := range []time.Duration{time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute,
		2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour,
		3 * time.Hour, 6 * time.Hour, 12 * time.Hour} {
		if d <= n {
			return n
		}
	}
	return 24 * time.Hour
}
