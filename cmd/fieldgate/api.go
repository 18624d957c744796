package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"fieldgate/broker"
	"fieldgate/httpapi"
	"fieldgate/sensors"
	"fieldgate/store"
	"fieldgate/store/clock"
	"fieldgate/store/credentials"
	"fieldgate/uplink"
)

// apiServer is the running REST API: its handler, HTTP server and listener.
type apiServer struct {
	api    *httpapi.Server
	http   *http.Server
	ln     net.Listener
	tls    bool
	done   chan error
	served chan struct{} // closed when Serve returns
}

// startAPI builds the API over the components and starts serving it.
func startAPI(cfg *Config, log *slog.Logger, st *store.Store, creds *credentials.Checker, mq *broker.Broker, poller *sensors.Poller, sender *uplink.Sender, commits *commitFanout, clk *clock.Tracker) (*apiServer, error) {
	deps := httpapi.Deps{
		Store: st, Sensors: poller, Clock: clk.State,
		ValidateDeviceID: broker.ValidateDeviceID, Credentials: creds,
	}
	if mq != nil {
		deps.Broker = mq
	}
	if sender != nil {
		deps.Uplink = uplinkStatus{sender}
	}
	o := cfg.apiOptions()
	o.Logger = log
	o.OnNewPassword = func(user string) {
		if user == "admin" {
			forgetInitialAdmin(st, cfg.DataDir, log)
		}
	}
	api, err := httpapi.New(deps, o)
	if err != nil {
		return nil, err
	}
	if err := ensureAdmin(st, cfg.DataDir, log); err != nil {
		return nil, errors.Join(err, api.Close())
	}
	ln, err := net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		return nil, errors.Join(listenHint("api.listen", cfg.API.Listen, err), api.Close())
	}
	ln = api.Listen(ln, httpapi.ConnLimits{Max: cfg.API.MaxConnections}) // net/http retries accept errors itself
	s := &apiServer{api: api, http: api.HTTPServer(cfg.API.Listen), ln: ln, done: make(chan error, 1), served: make(chan struct{})}
	if tc, err := apiTLS(cfg, log); err != nil {
		return nil, errors.Join(err, ln.Close(), api.Close())
	} else if tc != nil {
		s.http.TLSConfig, s.tls = tc, true
		s.ln = tls.NewListener(ln, tc)
	}
	commits.set(api.Committed)
	go func() {
		err := s.http.Serve(s.ln)
		close(s.served)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// url is the API's base URL as reachable from this host.
func (s *apiServer) url() string {
	scheme := "http"
	if s.tls {
		scheme = "https"
	}
	return scheme + "://" + s.ln.Addr().String()
}

// check is the watchdog's look at the API: the server still serves its
// listener, and /healthz answers 200 through the whole handler chain. It
// runs in process, not through the listener: clients that flood the
// listener (its cap is theirs to reach) must not make the check fail and
// systemd restart the gateway; /status and /metrics report a saturated
// API instead.
func (s *apiServer) check(ctx context.Context) error {
	select {
	case <-s.served:
		return errors.New("api: the server stopped serving its listener")
	default:
	}
	return s.api.CheckHealth(ctx)
}

// close stops taking requests, lets running ones finish within the
// deadline, and ends live streams.
func (s *apiServer) close(timeout time.Duration) error {
	if s == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := s.http.Shutdown(ctx)
	return errors.Join(err, s.api.Close(), <-s.done)
}

// ensureAdmin creates the first account when there is none: user "admin"
// with a random password written (only its owner may read it) to
// initial-admin-password in the data directory, so that a fresh gateway
// can be managed without stopping it. The file is removed once that
// password is changed (see forgetInitialAdmin).
func ensureAdmin(st *store.Store, dataDir string, log *slog.Logger) error {
	users, err := st.Users()
	if err != nil {
		return err
	}
	if len(users) > 0 {
		forgetInitialAdmin(st, dataDir, log)
		return nil
	}
	password, hash, err := credentials.NewPassword()
	if err != nil {
		return err
	}
	path := initialAdminFile(dataDir)
	if err := writeSecret(path, []byte(password+"\n")); err != nil {
		return fmt.Errorf("api: write the first admin password: %w", err)
	}
	if _, err := st.PutUser(store.User{Name: "admin", Role: "admin", PasswordHash: hash, InitialHash: hash, CreatedAt: time.Now().UTC()}); err != nil {
		return err
	}
	log.Info("api: created user admin; its password is in "+path+" — log in and change it", "file", path)
	return nil
}

// commitFanout forwards the store's commit callback to the API once it
// exists (the store opens first).
type commitFanout struct {
	fn atomic.Pointer[func([]store.Reading, time.Duration)]
}

func (c *commitFanout) set(fn func([]store.Reading, time.Duration)) { c.fn.Store(&fn) }

// committed is store.Options.OnCommit.
func (c *commitFanout) committed(rs []store.Reading, took time.Duration) {
	if fn := c.fn.Load(); fn != nil {
		(*fn)(rs, took)
	}
}

// uplinkStatus adapts the uplink to the API: a retry asked while it stops
// is the API's "try again shortly". The broker, the poller and the
// uplink's status are the API's types as they are.
type uplinkStatus struct{ *uplink.Sender }

// RetryDeadLetter maps a stopped uplink to the API's "try again shortly".
func (u uplinkStatus) RetryDeadLetter(ctx context.Context, first uint64) error {
	return busyIfStopped(u.Sender.RetryDeadLetter(ctx, first))
}

// RetryDeadLetters maps a stopped uplink to the API's "try again shortly".
func (u uplinkStatus) RetryDeadLetters(ctx context.Context) (int, error) {
	n, err := u.Sender.RetryDeadLetters(ctx)
	return n, busyIfStopped(err)
}

func busyIfStopped(err error) error {
	if errors.Is(err, uplink.ErrStopped) {
		return fmt.Errorf("%w: the uplink is stopping", httpapi.ErrBusy)
	}
	return err
}
