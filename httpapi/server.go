package httpapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"fieldgate/broker"
	"fieldgate/sensors"
	"fieldgate/store"
	"fieldgate/store/clock"
	"fieldgate/store/credentials"
	"fieldgate/uplink"
)

// Sensors reports the health of the gateway's own sensors (the poller's
// own type: one definition, no copy).
type Sensors interface {
	Health() []sensors.Health
}

// Broker is the embedded MQTT broker as the API sees it.
type Broker interface {
	Stats() broker.Stats
	// Disconnect closes a device's session, if it has one.
	Disconnect(device string)
	// Removed closes a deleted device's sessions and forgets what the
	// broker saw of it.
	Removed(device string)
	// LiveDevice applies what the broker saw but has not yet written to the
	// store (online state, last seen, counters).
	LiveDevice(d store.Device) store.Device
	// Probe connects to the broker as a device would and waits for its
	// CONNACK: readiness proves the broker answers, not only that its port
	// is open.
	Probe(ctx context.Context) error
}

// Uplink is the replay of readings to the cloud.
type Uplink interface {
	Status() uplink.Status
	// RetryDeadLetter puts a dead-lettered batch back in the queue.
	RetryDeadLetter(ctx context.Context, first uint64) error
	// RetryDeadLetters puts every dead letter back in the queue and says
	// how many it queued.
	RetryDeadLetters(ctx context.Context) (int, error)
}

// Deps are the components the API reports on. Broker, Sensors and Uplink may
// be nil when they are switched off.
type Deps struct {
	Store   *store.Store
	Broker  Broker
	Sensors Sensors
	Uplink  Uplink
	// Clock reports whether the system clock is synchronised (the
	// gateway's clock tracker); nil means unknown.
	Clock func() clock.State
	// ValidateDeviceID says why an id cannot name a device (required): the
	// broker's rule.
	ValidateDeviceID func(id string) error
	// Credentials checks passwords: the process's one Checker, shared with
	// the broker. Default: one of its own.
	Credentials *credentials.Checker
}

// Options configure the API. The zero value of each field means the default
// given with it.
type Options struct {
	// Config is what the configuration file sets (the api: section).
	Config
	// Version is reported by /status.
	Version string
	// GatewayName is the name technicians know the gateway by, shown on
	// the page; empty: its id.
	GatewayName string
	// OnNewPassword, if set, hears of every password the API changed (by
	// user name), after the change was stored.
	OnNewPassword func(user string)
	// ExportDir holds export files. Required.
	ExportDir string
	// ExportTTL is how long a finished export is kept (default 24 h).
	ExportTTL time.Duration
	// AutonomyWarning: health warns when the store would fill with readings
	// the cloud has not got in less than this at the current rate (default
	// the uplink's, uplink.DefaultConfig).
	AutonomyWarning time.Duration
	// Logger receives the API's logs. Default: discard.
	Logger *slog.Logger
	// Now returns the current time (tests inject one). Default time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	o.Config = o.Config.withDefaults()
	if o.ExportTTL <= 0 {
		o.ExportTTL = 24 * time.Hour
	}
	if o.AutonomyWarning <= 0 {
		o.AutonomyWarning = uplink.DefaultConfig().AutonomyWarning
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Server is the REST API. It is an http.Handler; serve it through an
// http.Server with timeouts (see HTTPServer).
type Server struct {
	opts    Options
	deps    Deps
	st      *store.Store
	log     *slog.Logger
	started time.Time

	engine  *gin.Engine
	limiter *limiter
	hub     *hub
	exports *exports
	metrics *metrics
	rates   *rateSampler
	logins  *credentials.Throttle // failed logins per address and account
	stop    chan struct{}         // ends watchStatus
	stopped chan struct{}
	closing sync.Once
	conns   atomic.Pointer[connLimiter] // set by Listen
	hosts   *hostGuard
	probe   probeCache // /readyz's broker probe
}

// New builds the API over deps.
func New(deps Deps, o Options) (*Server, error) {
	if deps.Store == nil || deps.ValidateDeviceID == nil {
		return nil, fmt.Errorf("httpapi: Deps needs a store and ValidateDeviceID")
	}
	if deps.Credentials == nil {
		deps.Credentials = credentials.NewChecker()
	}
	o = o.withDefaults()
	s := &Server{
		opts: o, deps: deps, st: deps.Store, log: o.Logger, started: o.Now(),
		limiter: newLimiter(o.RateLimit, o.RateBurst, o.Now),
		rates:   &rateSampler{},
		logins:  credentials.NewThrottle(addrPolicy, accountPolicy, o.Now),
		stop:    make(chan struct{}), stopped: make(chan struct{}),
	}
	s.hub = newHub(deps.Store.GatewayID())
	s.hosts = newHostGuard(o.Hosts, o.Now)
	s.metrics = newMetrics(s)
	if o.ExportDir == "" {
		return nil, fmt.Errorf("httpapi: Options.ExportDir is required")
	}
	ex, err := newExports(s, filepath.Clean(o.ExportDir))
	if err != nil {
		return nil, err
	}
	s.exports = ex
	engine, err := s.routes()
	if err != nil {
		return nil, err
	}
	s.engine = engine
	go func() { defer close(s.stopped); s.watchStatus(s.stop) }()
	return s, nil
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.engine.ServeHTTP(w, r)
}

// Committed passes readings that were just committed to the live stream and
// the commit latency to the metrics. It never blocks: wire it to
// store.Options.OnCommit.
func (s *Server) Committed(rs []store.Reading, took time.Duration) {
	s.metrics.commit.Observe(took.Seconds())
	s.hub.publishReadings(rs)
}

// Close ends live streams and waits for running exports to stop.
func (s *Server) Close() error {
	s.closing.Do(func() {
		close(s.stop)
		<-s.stopped
		s.hub.close()
		s.exports.close()
	})
	return nil
}

// HTTPServer wraps the API in an http.Server with the timeouts a LAN
// service needs against slow or stalled clients, and the connection
// limits' idle handling (see Listen). Serve it on the listener Listen
// returned. WriteTimeout is lifted by the handlers that stream (exports,
// WebSocket) by way of http.ResponseController.
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ConnState:         s.connState,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}
