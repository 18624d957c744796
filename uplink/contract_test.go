package uplink

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// TestRequestsMatchTheCloudAPI validates every request the sender makes
// against docs/cloud-api.yaml, the document a cloud team implements.
func TestRequestsMatchTheCloudAPI(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("../docs/cloud-api.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("docs/cloud-api.yaml is not valid OpenAPI: %v", err)
	}
	doc.Servers = nil // match the test server's address
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	var checked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Errorf("body is not gzip: %v", err)
			return
		}
		js, err := io.ReadAll(zr)
		if err != nil {
			t.Error(err)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(js))
		route, params, err := router.FindRoute(r)
		if err != nil {
			t.Errorf("%s %s matches no operation: %v", r.Method, r.URL.Path, err)
			return
		}
		in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: func(_ context.Context, a *openapi3filter.AuthenticationInput) error {
				if r.Header.Get("Authorization") != "Bearer secret" {
					return a.NewError(io.ErrUnexpectedEOF)
				}
				return nil
			}}}
		if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
			t.Errorf("request does not match docs/cloud-api.yaml: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		checked.Add(1)
	}))
	defer srv.Close()
	st := testStore(t, 250)
	running(t, st, fastOptions(srv.URL))
	drained(t, st, 10*time.Second)
	if checked.Load() < 3 {
		t.Errorf("only %d requests validated", checked.Load())
	}
}
