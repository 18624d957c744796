package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
)

// internalKey marks a request made in process (CheckHealth's): no client
// can set a context value.
type internalKey struct{}

// internal reports whether r was made in process.
func internal(r *http.Request) bool { return r.Context().Value(internalKey{}) != nil }

// CheckHealth runs GET /healthz through the whole handler chain in
// process, for the systemd watchdog: not through the listener, whose
// connection cap clients flooding it may reach (that must be reported, not
// answered with a restart), and exempt from the per-client rate limit.
func (s *Server) CheckHealth(ctx context.Context) error {
	req, err := http.NewRequestWithContext(context.WithValue(ctx, internalKey{}, true), http.MethodGet, "/healthz", nil)
	if err != nil {
		return err
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return fmt.Errorf("api: /healthz answered %d: %s", rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	return nil
}
