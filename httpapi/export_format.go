package httpapi

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/gin-gonic/gin"

	"fieldgate/store"
)

// exportRange is what an export covers: a time range, optionally one source
// and one quantity.
type exportRange struct {
	Format   string    `json:"format"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Source   string    `json:"source,omitempty"`
	Quantity string    `json:"quantity,omitempty"`
}

// validate checks the range and fills defaults: CSV, the last 24 hours.
func (e *exportRange) validate(now time.Time) error {
	var bad invalid
	switch e.Format {
	case "":
		e.Format = "csv"
	case "csv", "ndjson":
	default:
		bad.add("format", "must be csv or ndjson, not %q", e.Format)
	}
	if e.To.IsZero() {
		e.To = now.UTC()
	}
	if e.From.IsZero() {
		e.From = e.To.Add(-24 * time.Hour)
	}
	if !e.From.Before(e.To) {
		bad.add("from", "must be before to")
	}
	return bad.err()
}

// series lists the series the range covers.
func (e *exportRange) series(st *store.Store) []store.SeriesKey {
	return slices.DeleteFunc(st.Series(), func(k store.SeriesKey) bool {
		return (e.Source != "" && k.Source != e.Source) || (e.Quantity != "" && k.Quantity != e.Quantity)
	})
}

func storeQuery(source, quantity string, e exportRange) store.Query {
	return store.Query{Source: source, Quantity: quantity, From: e.From, To: e.To}
}

func (e *exportRange) contentType() string {
	if e.Format == "ndjson" {
		return "application/x-ndjson"
	}
	return "text/csv; charset=utf-8"
}

// rowWriter writes readings in one export format.
type rowWriter interface {
	write(r readingBody) error
	flush() error
}

func newRowWriter(format string, w io.Writer) (rowWriter, error) {
	if format == "ndjson" {
		return ndjsonWriter{json.NewEncoder(w)}, nil
	}
	cw := csv.NewWriter(w)
	return csvWriter{cw}, cw.Write([]string{"id", "seq", "source", "quantity", "value", "unit", "time", "clock"})
}

type csvWriter struct{ w *csv.Writer }

func (c csvWriter) write(r readingBody) error {
	return c.w.Write([]string{r.ID, strconv.FormatUint(r.Seq, 10), textCell(r.Source), textCell(r.Quantity),
		strconv.FormatFloat(r.Value, 'f', -1, 64), textCell(r.Unit), r.Time.Format(time.RFC3339Nano), r.Clock})
}

// textCell neutralises a text cell a spreadsheet would run as a formula
// (OWASP's rule: one starting with =, +, -, @, tab or CR gets a leading
// apostrophe). Quantities and units come from the devices: a node could
// name one =HYPERLINK(…). Values are numbers the gateway formats, and a
// negative one stays a number.
func textCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (c csvWriter) flush() error { c.w.Flush(); return c.w.Error() }

type ndjsonWriter struct{ enc *json.Encoder }

func (n ndjsonWriter) write(r readingBody) error { return n.enc.Encode(r) }
func (n ndjsonWriter) flush() error              { return nil }

// writeExport writes every reading of e to w, series by series, oldest
// first, calling progress after each series.
func (s *Server) writeExport(e exportRange, w io.Writer, progress func(n int) error) error {
	rw, err := newRowWriter(e.Format, w)
	if err != nil {
		return err
	}
	for _, k := range e.series(s.st) {
		n := 0
		err := s.st.Walk(storeQuery(k.Source, k.Quantity, e), func(r store.Reading) error {
			n++
			return rw.write(s.readingView(r))
		})
		if err == nil {
			err = rw.flush()
		}
		if err == nil && progress != nil {
			err = progress(n)
		}
		if err != nil {
			return err
		}
	}
	return rw.flush()
}

// streamExport streams readings as CSV or NDJSON straight to the client.
func (s *Server) streamExport(c *gin.Context) {
	now := s.opts.Now()
	e := exportRange{Format: c.Query("format"), Source: c.Query("source"), Quantity: c.Query("quantity")}
	var err error
	if e.From, err = parseTime(c, "from", now); err == nil {
		e.To, err = parseTime(c, "to", now)
	}
	if err == nil {
		err = e.validate(now)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	if !acceptsAny(c.GetHeader("Accept"), []string{mediaType(e.contentType())}) {
		s.fail(c, errorf(http.StatusNotAcceptable, "format=%s is %s, which the Accept header does not allow", e.Format, mediaType(e.contentType())))
		return
	}
	c.Header("Content-Type", e.contentType())
	c.Header("Content-Disposition", `attachment; filename="`+exportName(e)+`"`)
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusOK)
	rc := http.NewResponseController(c.Writer)
	err = s.writeExport(e, c.Writer, func(int) error {
		// A long export outlives the server's write timeout: extend it per series.
		return rc.SetWriteDeadline(time.Now().Add(time.Minute))
	})
	if err != nil {
		s.log.Warn("api export stream ended early", "err", err, "addr", c.ClientIP())
	}
}

func mediaType(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return mt
}

// exportName is the file name offered for an export.
func exportName(e exportRange) string {
	name := "fieldgate"
	for _, part := range []string{e.Source, e.Quantity} {
		if part != "" {
			name += "-" + strings.Map(func(r rune) rune {
				if r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '_' || r == '-') {
					return r
				}
				return '_'
			}, part)
		}
	}
	return name + "-" + e.From.UTC().Format("20060102T150405Z") + "-" + e.To.UTC().Format("20060102T150405Z") + "." + e.Format
}
