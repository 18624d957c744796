package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"fieldgate/store"
	"fieldgate/store/credentials"
)

// Per-client sizes given to mochi: the outbound packets queued for one
// client (more are dropped for QoS 0 and held in flight for QoS 1/2), its
// read buffer (larger packets are read through), and its write buffer.
// That one is a byte: mochi then writes every packet as it comes, and
// holds none back while more publishes are queued for the client, where a
// PUBACK the commit writes straight to the socket (writePuback) would
// overtake an earlier one mochi wrote (MQTT-4.6.0-2).
const (
	clientWritesPending  = 128
	clientReadBufferSize = 512
	clientWriteBuffer    = 1
)

// Store is what the broker needs of the store.
type Store interface {
	DeviceStore
	DeviceUpdater
	Append(ctx context.Context, rs ...store.Reading) error
	AppendThen(ctx context.Context, rs []store.Reading, lead store.Lead, done func(error), flush func()) error
	Enqueue(ctx context.Context, rs ...store.Reading) error
	Series() []store.SeriesKey
}

var _ Store = (*store.Store)(nil)

// Options configure the broker: its Config and what the program wires
// in. Zero values mean the defaults given.
type Options struct {
	// Config is what the configuration file sets (the mqtt: section).
	Config
	// CommitTimeout bounds how long a publish waits for its commit. Default 10 s.
	CommitTimeout time.Duration
	// TimeTolerance is how far in the future a device timestamp may be
	// before the reading is flagged unsynced. Default 5 minutes.
	TimeTolerance time.Duration
	// FlushInterval is how often device counters (messages, last seen,
	// online) are written to the store; the API shows them live in
	// between, and a crash loses at most this much of them (never a
	// reading). Default 5 minutes: each write is a bbolt commit, tens of
	// KB on the SD card.
	FlushInterval time.Duration
	// Logger receives the broker's logs. Default: discard.
	Logger *slog.Logger
	// Credentials checks device passwords: the process's one Checker,
	// shared with the API. Default: one of its own.
	Credentials *credentials.Checker
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Stamp dates readings that carry no time of their own. Default: Now,
	// trusted as synced.
	Stamp store.Stamp
}

func (o Options) withDefaults() Options {
	o.Config = o.Config.withDefaults()
	if o.CommitTimeout <= 0 {
		o.CommitTimeout = 10 * time.Second
	}
	if o.TimeTolerance <= 0 {
		o.TimeTolerance = 5 * time.Minute
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 5 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Stamp == nil {
		o.Stamp = store.Trusted(o.Now)
	}
	return o
}

// Stats counts what the broker did since start.
type Stats struct {
	Clients int64
	// Messages received; Readings stored; Rejected payloads; Unmatched
	// topics (allowed, acknowledged, not readings).
	Messages, Readings, Rejected, Unmatched uint64
	// AuthFailures, AuthThrottled (logins refused unchecked after too many
	// failures), ConnectLimited (devices reconnecting too often), ACLDenied
	// (publishes, subscriptions, wills), RateLimited publishes, Flagged
	// (implausible device timestamps).
	AuthFailures, AuthThrottled, ConnectLimited, ACLDenied, RateLimited, Flagged uint64
	// StoreFailures: publishes refused because the commit failed;
	// RetainDropped: retain flags (of publishes and wills) dropped at a
	// device's share or the cap; QuantityCapped: publishes with readings of
	// a new quantity past a device's cap; WillsRefused: CONNECTs refused
	// for a will over the size limit.
	StoreFailures, RetainDropped, QuantityCapped, WillsRefused uint64
	// QueuedOffline counts QoS 1/2 messages queued for persistent
	// sessions while their client was away (at most maxQueuedPerSession
	// each; mochi counts those past it as InflightDropped).
	QueuedOffline uint64
	// Retained and DelayedWills are held now.
	Retained, DelayedWills int
	Guard                  GuardStats
}

// Broker is fieldgate's embedded MQTT broker.
type Broker struct {
	o          Options
	st         Store
	log        *slog.Logger
	server     *mqtt.Server
	inline     *mqtt.Client // the server's own client, which forwards acknowledged publishes
	guard      *guard
	auth       *authenticator
	limits     *devLimits
	quantities *quantities
	activity   activity
	hook       *hook
	retained   *retainedBook // retained messages clients hold
	wills      delayedWills  // wills waiting for their delay

	probeSecret []byte                // the password of the broker's own health probe
	logins      *credentials.Throttle // failed logins per address and device id

	stats   Stats
	statsMu sync.Mutex
	addrs   map[string]string // listener id → bound address
	stop    chan struct{}
	done    chan struct{}
	closed  atomic.Bool
}

// maxQueuedPerSession bounds the QoS 1/2 messages one session holds
// unacknowledged, those queued while its client is away included: at the
// largest packet, 4 MiB a session.
const maxQueuedPerSession = 256

// maxSessionExpiry bounds how long a disconnected client's session (and
// with it a delayed will) is kept.
const maxSessionExpiry = 24 * time.Hour

// New configures a broker; Start opens its listeners.
func New(st Store, o Options) (*Broker, error) {
	o = o.withDefaults()
	if o.Credentials == nil {
		o.Credentials = credentials.NewChecker()
	}
	b := &Broker{o: o, st: st, log: o.Logger, auth: &authenticator{st: st, c: o.Credentials}, addrs: map[string]string{},
		probeSecret: newProbeSecret(), logins: credentials.NewThrottle(addrPolicy, devicePolicy, o.Now), stop: make(chan struct{}), done: make(chan struct{})}
	b.activity.load = st.Device
	b.guard = newGuard(o.Limits, func(msg string, err error, attrs ...any) {
		if err != nil {
			attrs = append(attrs, "err", err)
		}
		b.log.Warn("mqtt: "+msg, attrs...)
	})
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(o.Limits.MaxPacketSize)
	caps.MaximumClients = int64(o.Limits.MaxConnections)
	caps.ReceiveMaximum = uint16(min(o.ReceiveMaximum, 65535))
	caps.MaximumInflight = maxQueuedPerSession
	caps.Compatibilities.NoInheritedPropertiesOnAck = true // a PUBACK echoing the publish's user properties upsets some clients
	caps.TopicAliasMaximum = 0
	caps.MaximumSessionExpiryInterval = uint32(maxSessionExpiry.Seconds())
	caps.MaximumMessageExpiryInterval = 24 * 3600
	// Sized for sensor nodes, which publish small packets and subscribe to
	// little: mochi's default queue of 8192 outbound packets and 2 KiB
	// buffers cost ~70 KB for every idle client.
	caps.MaximumClientWritesPending = clientWritesPending
	b.server = mqtt.New(&mqtt.Options{Capabilities: caps, InlineClient: true, Logger: newMochiLog(o.Logger),
		ClientNetReadBufferSize: clientReadBufferSize, ClientNetWriteBufferSize: clientWriteBuffer})
	b.inline, _ = b.server.Clients.Get(mqtt.InlineClientId) // made by mqtt.New with InlineClient
	b.limits = newDevLimits(o)
	b.quantities = &quantities{max: o.MaxQuantitiesPerDevice, series: st.Series, devs: map[string]map[string]bool{}}
	b.hook = &hook{b: b, ids: map[*mqtt.Client]*identity{}, offline: map[string]offlineSession{}}
	b.retained = newRetainedBook(o.MaxRetained)
	if err := b.server.AddHook(b.hook, nil); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	if o.AllowAnonymous {
		b.log.Warn("mqtt: ANONYMOUS ACCESS IS ON: any client can publish as the device named by its client id; use this on a bench only")
	}
	return b, nil
}

// Start binds the listeners and serves. It returns once they accept.
func (b *Broker) Start() error {
	type spec struct {
		id, addr string
		make     func(string) (listeners.Listener, error)
	}
	specs := []spec{
		{"tcp", b.o.Listen, func(a string) (listeners.Listener, error) {
			return &tcpListener{id: "tcp", address: a, onErr: b.guard.onError, errs: &b.guard.acceptErrs}, nil
		}},
		{"tls", b.o.TLSListen, func(a string) (listeners.Listener, error) {
			cert, err := tls.LoadX509KeyPair(b.o.TLSCert, b.o.TLSKey)
			if err != nil {
				return nil, fmt.Errorf("broker: TLS certificate: %w", err)
			}
			return &tcpListener{id: "tls", address: a, onErr: b.guard.onError, errs: &b.guard.acceptErrs,
				tls: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}, nil
		}},
		{"ws", b.o.WSListen, func(a string) (listeners.Listener, error) {
			return &wsListener{id: "ws", address: a, origins: b.o.WSOrigins, g: b.guard}, nil
		}},
	}
	for _, s := range specs {
		if s.addr == "" {
			continue
		}
		l, err := s.make(s.addr)
		if err != nil {
			return err
		}
		if err := b.server.AddListener(&guardedListener{Listener: l, g: b.guard, server: b.server}); err != nil {
			return &ListenError{Listener: s.id, Addr: s.addr, Err: err}
		}
		b.addrs[s.id] = l.Address()
	}
	if err := b.server.Serve(); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	go b.flushLoop()
	return nil
}

// ListenError says which listener could not listen.
type ListenError struct {
	Listener string // "tcp", "tls" or "ws"
	Addr     string
	Err      error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("broker: listen on %s (%s): %v", e.Addr, e.Listener, e.Err)
}

// Unwrap returns the listen error.
func (e *ListenError) Unwrap() error { return e.Err }

// Addr returns the bound address of a listener: "tcp", "tls" or "ws".
func (b *Broker) Addr(id string) string { return b.addrs[id] }

func (b *Broker) flushLoop() {
	defer close(b.done)
	t := time.NewTicker(b.o.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.hook.sweep(b.o.Now())
			if err := b.activity.flush(b.st); err != nil {
				b.log.Error("mqtt: writing device counters", "err", err)
			}
		}
	}
}

// Close disconnects every client, stops the listeners and writes the
// device counters.
func (b *Broker) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	err := b.server.Close()
	close(b.stop)
	<-b.done
	return errors.Join(err, b.activity.flush(b.st))
}

// Disconnect drops every connection of device (after it was deleted or its
// password changed).
func (b *Broker) Disconnect(device string) {
	b.hook.mu.Lock()
	var cls []*mqtt.Client
	for cl, id := range b.hook.ids {
		if id.device == device {
			cls = append(cls, cl)
		}
	}
	b.hook.mu.Unlock()
	for _, cl := range cls {
		_ = b.server.DisconnectClient(cl, packets.ErrNotAuthorized) // best effort: it may be gone already
	}
}

// Removed drops every connection of a deleted device and forgets what the
// broker saw of it, so that a device added again under its id starts clean.
func (b *Broker) Removed(device string) {
	b.Disconnect(device)
	b.activity.forget(device)
	b.dropRetained(device)
}

// LiveDevice returns a stored device with what the broker saw since its
// last write to the store (every FlushInterval) applied: online state, last seen and
// counters as of now.
func (b *Broker) LiveDevice(d store.Device) store.Device {
	return b.activity.live(d)
}

// PublishReading publishes one of the gateway's own readings, retained, on
// fieldgate/gateway/{source}/{quantity}, for local consumers.
func (b *Broker) PublishReading(r store.Reading) {
	topic := "fieldgate/" + GatewayDevice + "/" + r.Source + "/" + r.Quantity
	if err := b.server.Publish(topic, []byte(strconv.FormatFloat(r.Value, 'f', -1, 64)), true, 0); err != nil {
		b.log.Warn("mqtt: publishing a gateway reading", "topic", topic, "err", err)
	}
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	b.statsMu.Lock()
	s := b.stats
	b.statsMu.Unlock()
	s.Clients = atomic.LoadInt64(&b.server.Info.ClientsConnected)
	s.Guard = b.guard.stats()
	s.Retained, s.DelayedWills = b.retained.count(), b.wills.count()
	return s
}

func (b *Broker) count(c *uint64, n ...int) {
	b.statsMu.Lock()
	defer b.statsMu.Unlock()
	if len(n) > 0 {
		*c += uint64(n[0])
		return
	}
	*c++
}
