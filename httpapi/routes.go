package httpapi

import (
	"net/http"
	"slices"
	"time"

	"github.com/gin-contrib/cors"
	"github.com/gin-contrib/gzip"
	"github.com/gin-gonic/gin"
)

// routes builds the router: every route of the API in one place.
func (s *Server) routes() (*gin.Engine, error) {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	// Believe X-Forwarded-For only from configured proxies (none by
	// default), so a forged header cannot dodge the rate limit or the log.
	if err := e.SetTrustedProxies(s.opts.TrustedProxies); err != nil {
		return nil, err
	}
	// Compress answers for browsers on a slow Wi-Fi (a day's series is ~30 KB
	// of JSON, 5 KB gzip'd); not the streams: exports, the WebSocket and
	// /metrics (which compresses itself).
	e.Use(s.recovery, s.logRequests, s.checkHost, gzip.Gzip(gzip.DefaultCompression,
		gzip.WithExcludedPaths([]string{"/api/v1/readings/export", "/api/v1/ws", "/metrics"}),
		gzip.WithExcludedPathsRegexs([]string{`^/api/v1/exports/[^/]+/file$`})))
	if len(s.opts.CORSOrigins) > 0 {
		e.Use(s.corsFor(cors.New(cors.Config{
			AllowOrigins:     s.opts.CORSOrigins,
			AllowMethods:     []string{"GET", "PUT", "PATCH", "POST", "DELETE"},
			AllowHeaders:     []string{"Authorization", "Content-Type", "If-None-Match"},
			ExposeHeaders:    []string{"ETag", "Link", "Location", "Retry-After", "X-Total-Count", "Content-Disposition"},
			AllowCredentials: false,
			MaxAge:           12 * time.Hour,
		})))
	}
	e.NoRoute(func(c *gin.Context) {
		s.fail(c, errorf(http.StatusNotFound, "no such resource: %s (the API is under /api/v1; see /api/v1/openapi.json)", c.Request.URL.Path))
	})
	e.NoMethod(func(c *gin.Context) {
		s.fail(c, errorf(http.StatusMethodNotAllowed, "%s is not allowed here; allowed: %s", c.Request.Method, c.Writer.Header().Get("Allow")))
	})

	s.pageRoutes(e)
	// Probes and metrics share each client's rate limit (the watchdog's
	// in-process check is exempt: see CheckHealth); /metrics is a read,
	// which needs a token unless reads are open.
	e.GET("/healthz", s.rateLimit, s.healthz)
	e.GET("/readyz", s.rateLimit, s.readyz)
	e.GET("/metrics", s.rateLimit, s.authenticate, s.require(RoleViewer), s.serveMetrics)

	produces := map[string][]string{
		"/api/v1/readings/export":  {"text/csv", "application/x-ndjson", "application/json"},
		"/api/v1/exports/:id/file": {"application/gzip", "application/json"},
		"/api/v1/ws":               {"application/json", "text/plain"},
	}
	api := e.Group("/api/v1", s.rateLimit, s.negotiate(produces), s.limitBody, s.authenticate)
	viewer, technician, admin := s.require(RoleViewer), s.require(RoleTechnician), s.require(RoleAdmin)

	api.GET("/openapi.json", s.openapi)
	api.POST("/auth/login", s.login)
	api.POST("/auth/logout", s.logout)

	api.GET("/status", viewer, s.getStatus)
	api.GET("/sources", viewer, s.listSources)
	api.GET("/sources/:id", viewer, s.getSource)
	api.GET("/sources/:id/readings", viewer, s.listReadings)
	api.GET("/sources/:id/series", viewer, s.series)
	api.GET("/ws", viewer, s.ws)

	api.GET("/devices", viewer, s.listDevices)
	api.GET("/devices/:id", viewer, s.getDevice)
	api.PUT("/devices/:id", technician, s.putDevice)
	api.PATCH("/devices/:id", technician, s.patchDevice)
	api.DELETE("/devices/:id", technician, s.deleteDevice)

	api.GET("/uplink/deadletters", viewer, s.listDeadLetters)
	api.POST("/uplink/deadletters/retry", technician, s.retryDeadLetters)
	api.POST("/uplink/deadletters/:id/retry", technician, s.retryDeadLetter)
	api.DELETE("/uplink/deadletters/:id", technician, s.discardDeadLetter)

	api.GET("/readings/export", technician, s.streamExport)
	api.POST("/exports", technician, s.createExport)
	api.GET("/exports/:id", technician, s.getExport)
	api.GET("/exports/:id/file", technician, s.exportFile)

	api.GET("/users", admin, s.listUsers)
	api.GET("/users/:name", admin, s.getUser)
	api.PUT("/users/:name", admin, s.putUser)
	api.PATCH("/users/:name", admin, s.patchUser)
	api.DELETE("/users/:name", admin, s.deleteUser)
	api.GET("/tokens", admin, s.listTokens)
	api.POST("/tokens", admin, s.createToken)
	api.DELETE("/tokens/:id", admin, s.deleteToken)
	return e, nil
}

// corsFor applies the CORS middleware to requests from configured origins
// only. Others pass without CORS headers, so browsers keep them from reading
// answers, while the gateway's own page (whose POSTs carry an Origin too)
// and curl work as usual.
func (s *Server) corsFor(mw gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if slices.Contains(s.opts.CORSOrigins, c.GetHeader("Origin")) {
			mw(c)
			return
		}
		c.Next()
	}
}
