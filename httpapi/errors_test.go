package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"fieldgate/store"
)

// TestOneErrorMapping: the dead-letter handler mapped errors itself and
// answered 409 with whatever text an internal error had; a reply that
// could not be encoded went out as a bare 500 that nobody logged. Every
// handler's errors go through errorResponse now.
func TestOneErrorMapping(t *testing.T) {
	e := newEnv(t, Options{})
	for _, tc := range []struct {
		err    error
		status int
		msg    string
	}{
		{fmt.Errorf("%w: the uplink is stopping", ErrBusy), 503, "the uplink is stopping"},
		{fmt.Errorf("%w: no dead letter starts at 7", store.ErrNotFound), 404, "no dead letter starts at 7"},
		{errors.New("open /var/lib/fieldgate/secret: permission denied"), 500, "internal error"},
	} {
		e.uplink.retry = func(uint64) error { return tc.err }
		r := e.do(req{method: "POST", path: "/api/v1/uplink/deadletters/7/retry", role: RoleTechnician})
		if r.StatusCode != tc.status || !strings.Contains(string(r.body), tc.msg) || strings.Contains(string(r.body), "/var/lib") {
			t.Errorf("%v → %d %s, want %d with %q", tc.err, r.StatusCode, r.body, tc.status, tc.msg)
		}
		if tc.status == 503 && r.Header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
	}

	var logs bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&logs, nil))}
	s.metrics = newMetrics(s)
	router := gin.New()
	router.Use(s.logRequests)
	router.GET("/x", func(c *gin.Context) { reply(c, http.StatusOK, cacheRevalidate, map[string]float64{"v": math.NaN()}) })
	w := httptest.NewRecorder()
	router.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
	if w.Code != 500 || !strings.Contains(w.Body.String(), `"errors"`) {
		t.Errorf("a reply that cannot be encoded → %d %q, want 500 with the error body", w.Code, w.Body.String())
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "NaN") {
		t.Errorf("the failure was not logged with its cause: %q", logs.String())
	}
}
