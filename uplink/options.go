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

// Options configure a Sender: its Config and what the program wires in.
// Zero values mean the defaults given.
type Options struct {
	// Config is what the configuration file sets (the uplink: section).
	Config
	// Version goes into the User-Agent.
	Version string
	// AuthRetry is the least wait before probing again after 401/403.
	// Default 1 minute.
	AuthRetry time.Duration

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
	d := DefaultConfig()
	def(&o.BatchMaxReadings, d.BatchMaxReadings)
	def(&o.BatchMaxSize, d.BatchMaxSize)
	def(&o.InFlight, d.InFlight)
	defD(&o.FlushInterval, d.FlushInterval)
	defD(&o.BackoffBase, d.BackoffBase)
	defD(&o.BackoffMax, d.BackoffMax)
	defD(&o.Timeout, d.Timeout)
	defD(&o.AutonomyWarning, d.AutonomyWarning)
	defD(&o.AuthRetry, time.Minute)
	defD(&o.StatusInterval, time.Minute)
}
