package wire

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// A DecodeError is a request a receiver refuses; Status is the HTTP status
// the contract prescribes (400, 413 or 415).
type DecodeError struct {
	Status  int
	Message string
}

// Error is the message for the client.
func (e *DecodeError) Error() string { return e.Message }

// Limits bound what DecodeRequest reads.
type Limits struct {
	// Body is the most compressed bytes read (a larger body is a 413).
	Body int64
	// JSON is the most bytes a body may decompress to (a 413).
	JSON int64
}

// DecodeRequest reads a batch PUT's gzip body, as the contract requires, and
// decodes it. raw is the body as received, js the JSON it decompresses to.
func DecodeRequest(r *http.Request, lim Limits) (raw, js []byte, b BatchBody, err error) {
	if r.Header.Get("Content-Encoding") != "gzip" {
		return nil, nil, b, &DecodeError{http.StatusUnsupportedMediaType, "Content-Encoding must be gzip"}
	}
	raw, err = io.ReadAll(http.MaxBytesReader(nil, r.Body, lim.Body))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, nil, b, &DecodeError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes: split the batch", lim.Body)}
	case err != nil:
		return nil, nil, b, &DecodeError{http.StatusBadRequest, "reading body: " + err.Error()}
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, b, &DecodeError{http.StatusBadRequest, "body is not gzip: " + err.Error()}
	}
	plain, err := io.ReadAll(io.LimitReader(zr, lim.JSON+1))
	switch {
	case err != nil:
		return nil, nil, b, &DecodeError{http.StatusBadRequest, "body is not gzip: " + err.Error()}
	case int64(len(plain)) > lim.JSON:
		return nil, nil, b, &DecodeError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body decompresses to more than %d bytes: split the batch", lim.JSON)}
	}
	if err := json.Unmarshal(plain, &b); err != nil {
		return nil, nil, b, &DecodeError{http.StatusBadRequest, "body is not a batch: " + err.Error()}
	}
	return raw, plain, b, nil
}

// Check verifies that a batch matches its URL and key: the same gateway and
// bounds, at least one reading, readings in strictly increasing seq order
// within the bounds. It returns "" when the batch is well formed.
func (b BatchBody) Check(gateway string, first, last uint64, key string) string {
	switch {
	case b.Gateway != gateway || b.FirstSeq != first || b.LastSeq != last:
		return "body's gateway and bounds differ from the URL's"
	case !ValidIncarnation(b.Incarnation):
		return "incarnation must be 16 to 32 lowercase hex digits"
	case key != IdempotencyKey(gateway, b.Incarnation, first, last):
		return "Idempotency-Key differs from the URL and the body's incarnation"
	case len(b.Readings) == 0:
		return "empty batch"
	}
	prev := uint64(0)
	for _, rd := range b.Readings {
		if rd.Seq < first || rd.Seq > last || rd.Seq <= prev {
			return fmt.Sprintf("reading %d is out of order or outside %d-%d", rd.Seq, first, last)
		}
		prev = rd.Seq
	}
	return ""
}

// IsErrorBody reports whether b is the contract's error shape,
// {"errors":[{"code":…,"message":…}]}: what a receiver itself answers, as
// opposed to a proxy's, a load balancer's or a firewall's page.
func IsErrorBody(b []byte) bool {
	var e struct {
		Errors []struct {
			Code    *int    `json:"code"`
			Message *string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(b, &e) != nil || len(e.Errors) == 0 {
		return false
	}
	for _, x := range e.Errors {
		if x.Code == nil || x.Message == nil {
			return false
		}
	}
	return true
}

// ErrorBody is the contract's error shape for status and message.
func ErrorBody(status int, msg string) []byte {
	js, _ := json.Marshal(map[string]any{"errors": []any{map[string]any{"code": status, "message": msg}}}) // maps of strings and ints always encode
	return append(js, '\n')
}
