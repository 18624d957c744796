package uplink

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"fieldgate/store"
)

// Store is what the sender needs of the store.
type Store interface {
	GatewayID() string
	Incarnation() string
	Outbox() (store.OutboxState, error)
	ReadingsAfter(after uint64, limit int) ([]store.Reading, error)
	ReadingsBetween(first, last uint64) ([]store.Reading, error)
	FormBatch(from, to uint64, lim store.BatchLimits) (store.Batch, []store.Reading, uint64, error)
	SplitBatch(first, mid uint64) error
	AckBatch(first uint64) error
	DeadLetterBatch(first uint64, status int, reason string) error
}

var _ Store = (*store.Store)(nil)

// Options configure a Sender. Zero values mean the defaults given.
type Options struct {
	// URL is the cloud's base URL, e.g. https://ingest.example.com. Required.
	URL string
	// Token is the bearer token. TokenFile, if set, is read before every
	// request instead, so a rotated token needs no restart.
	Token, TokenFile string
	// Version goes into the User-Agent.
	Version string
	// MaxReadings and MaxBytes cap a batch (readings; uncompressed JSON
	// bytes). Defaults 500 and 256 KiB.
	MaxReadings, MaxBytes int
	// InFlight is how many batches may be in flight at once. Default 3.
	InFlight int
	// BacklogRate caps how fast the backlog drains, in readings/s, so that
	// live data and the cloud keep room. 0: no cap.
	BacklogRate float64
	// FlushInterval is how often new readings are looked for. Default 1 s.
	FlushInterval time.Duration
	// BackoffBase and BackoffMax bound the retry backoff. Defaults 1 s, 30 s:
	// an outage is probed at least every 30 s, so the uplink is back within
	// seconds of the cloud, while a fleet of 200 sends some 7 probes a
	// second.
	BackoffBase, BackoffMax time.Duration
	// AuthRetry is the least wait before probing again after 401/403.
	// Default 1 minute.
	AuthRetry time.Duration
	// Timeout bounds each request. Default 30 s.
	Timeout time.Duration
	// CAFile adds a CA to the system roots; ClientCert and ClientKey
	// enable mutual TLS.
	CAFile, ClientCert, ClientKey string

	// Report, if set, says how the gateway is doing; the sender then PUTs
	// the gateway's status to the receiver every StatusInterval (default 1
	// minute) while the cloud answers, for the fleet view.
	Report         func() Report
	StatusInterval time.Duration

	// Logger receives the sender's logs. Default: discard.
	Logger *slog.Logger
	// Client replaces the HTTP client built from the options (tests).
	Client *http.Client
	// Rand drives the backoff jitter (tests seed it). Default random.
	Rand *rand.Rand
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

// DefaultOptions returns the batch sizes, intervals and timeouts New uses
// for zero fields; the daemon's configuration starts from them.
func DefaultOptions() Options {
	var o Options
	o.defaultLimits()
	return o
}

func (o Options) withDefaults() (Options, error) {
	if err := checkURL(o.URL); err != nil {
		return o, fmt.Errorf("uplink: url %w", err)
	}
	o.defaultLimits()
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Rand == nil {
		o.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Client == nil {
		cl, err := newClient(o)
		if err != nil {
			return o, err
		}
		o.Client = cl
	}
	cl := *o.Client
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse } // see Sender.handle
	o.Client = &cl
	return o, nil
}

// defaultLimits fills the zero sizes, intervals and timeouts.
func (o *Options) defaultLimits() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxReadings, 500)
	def(&o.MaxBytes, 256<<10)
	def(&o.InFlight, 3)
	defD(&o.FlushInterval, time.Second)
	defD(&o.BackoffBase, time.Second)
	defD(&o.BackoffMax, 30*time.Second)
	defD(&o.AuthRetry, time.Minute)
	defD(&o.Timeout, 30*time.Second)
	defD(&o.StatusInterval, time.Minute)
}
