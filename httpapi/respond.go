package httpapi

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"fieldgate/store"
)

// Error codes beyond the HTTP status, for clients that branch on them.
const (
	codeInvalidPage = 4001 // page is not a positive integer
	codePastEnd     = 4002 // page is past the last one
)

// apiError is one entry of the error body. Field names the request field a
// 422 is about.
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// httpError is an error that knows its status and body entries; handlers
// return it (or any error, which errorResponse maps).
type httpError struct {
	Status int
	Errors []apiError
}

func (e *httpError) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, x := range e.Errors {
		msgs[i] = x.Message
	}
	return fmt.Sprintf("%d: %s", e.Status, strings.Join(msgs, "; "))
}

// errorf builds an httpError with the status as its code.
func errorf(status int, format string, args ...any) *httpError {
	return &httpError{Status: status, Errors: []apiError{{Code: status, Message: fmt.Sprintf(format, args...)}}}
}

// coded builds an httpError with an API-specific code.
func coded(status, code int, msg string) *httpError {
	return &httpError{Status: status, Errors: []apiError{{Code: code, Message: msg}}}
}

// invalid collects 422 field errors; nil if there are none.
type invalid []apiError

func (v *invalid) add(field, format string, args ...any) {
	*v = append(*v, apiError{Code: http.StatusUnprocessableEntity, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)})
}

func (v invalid) err() error {
	if len(v) == 0 {
		return nil
	}
	return &httpError{Status: http.StatusUnprocessableEntity, Errors: v}
}

// errorResponse maps any error to a status and body: store errors get
// their status, anything unexpected is
// a 500 whose message never leaks internals (it is logged instead).
func errorResponse(log *slog.Logger, err error) (int, []apiError) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.Status, he.Errors
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, []apiError{{Code: http.StatusNotFound, Message: strings.TrimPrefix(err.Error(), "store: ")}}
	case errors.Is(err, ErrBusy):
		return http.StatusServiceUnavailable, []apiError{{Code: http.StatusServiceUnavailable, Message: strings.TrimPrefix(err.Error(), ErrBusy.Error()+": ")}}
	case errors.Is(err, store.ErrLastAdmin):
		return http.StatusConflict, []apiError{{Code: http.StatusConflict, Message: strings.TrimPrefix(err.Error(), "store: ") + "; make another user an admin first"}}
	case errors.Is(err, store.ErrFull):
		return http.StatusServiceUnavailable, []apiError{{Code: http.StatusServiceUnavailable, Message: "the store is full"}}
	case errors.Is(err, store.ErrClosed):
		return http.StatusServiceUnavailable, []apiError{{Code: http.StatusServiceUnavailable, Message: "the gateway is shutting down"}}
	}
	log.Error("api: internal error", "err", err)
	return http.StatusInternalServerError, []apiError{{Code: http.StatusInternalServerError, Message: "internal error; see the gateway's log"}}
}

// fail writes err as the error body and stops the handler chain.
func (s *Server) fail(c *gin.Context, err error) {
	status, errs := errorResponse(s.log, err)
	switch status {
	case http.StatusUnauthorized:
		c.Header("WWW-Authenticate", `Bearer realm="fieldgate"`)
	case http.StatusServiceUnavailable:
		c.Header("Retry-After", "5")
	}
	c.Header("Cache-Control", "no-store")
	body, _ := json.Marshal(struct {
		Errors []apiError `json:"errors"`
	}{errs}) // marshalling plain structs cannot fail
	c.Data(status, jsonType, body)
	c.Abort()
}

const jsonType = "application/json; charset=utf-8"

// ErrBusy, wrapped by a dependency's error, says "try again shortly": the
// API answers 503 with Retry-After and the error's message.
var ErrBusy = errors.New("busy")

// internalErrorBody is the body of a 500 that never leaks internals.
var internalErrorBody = []byte(`{"errors":[{"code":500,"message":"internal error; see the gateway's log"}]}`)

// Cache policies by resource.
const (
	cacheRevalidate = "no-cache"          // live data: always revalidate, 304 if unchanged
	cachePrivate    = "private, no-store" // accounts, tokens, credentials
)

// reply writes v as JSON with the given Cache-Control. A 200 answer to a GET
// gets a strong ETag from its body, and an If-None-Match that matches it gets
// a 304 without a body.
func reply(c *gin.Context, status int, cache string, v any) {
	body, err := json.Marshal(v)
	if err != nil { // a value that cannot be JSON: a bug, logged by logRequests
		_ = c.Error(err)
		c.Header("Cache-Control", "no-store")
		c.Data(http.StatusInternalServerError, jsonType, internalErrorBody)
		c.Abort()
		return
	}
	c.Header("Cache-Control", cache)
	if status == http.StatusOK && (c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead) {
		sum := sha256.Sum256(body)
		etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
		c.Header("ETag", entityTag(c, etag))
		if etagMatches(c.GetHeader("If-None-Match"), etag) {
			c.Status(http.StatusNotModified)
			c.Writer.WriteHeaderNow()
			return
		}
	}
	c.Data(status, jsonType, body)
}

// entityTag weakens tag when the answer goes out gzip'd: the bytes sent are
// not the bytes the strong tag was computed from.
func entityTag(c *gin.Context, tag string) string {
	if c.Writer.Header().Get("Content-Encoding") == "gzip" {
		return "W/" + tag
	}
	return tag
}

// etagMatches implements If-None-Match's weak comparison (RFC 9110 13.1.2).
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// decode reads a JSON request body into v, refusing unknown fields and
// trailing data with a 400 that says what is wrong.
func decode(c *gin.Context, v any) error {
	dec := json.NewDecoder(c.Request.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooBig):
			return errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", tooBig.Limit)
		case errors.As(err, &syntax):
			return errorf(http.StatusBadRequest, "request body is not valid JSON (at byte %d)", syntax.Offset)
		case errors.As(err, &typ):
			return &httpError{Status: http.StatusUnprocessableEntity, Errors: []apiError{{Code: http.StatusUnprocessableEntity, Field: typ.Field,
				Message: fmt.Sprintf("%s: must be %s, not %s", typ.Field, typ.Type, typ.Value)}}}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return &httpError{Status: http.StatusUnprocessableEntity, Errors: []apiError{{Code: http.StatusUnprocessableEntity, Field: field,
				Message: field + ": unknown field"}}}
		case errors.Is(err, io.EOF):
			return errorf(http.StatusBadRequest, "request body is empty; send a JSON object")
		}
		return errorf(http.StatusBadRequest, "request body: %v", err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "request body has data after the JSON object")
	}
	return nil
}

// isJSON reports whether a Content-Type names JSON.
func isJSON(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}
