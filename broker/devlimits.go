package broker

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// devLimits holds each device's token buckets — publishes and connects —
// for the life of the process, so that a device cannot reset its publish
// budget by reconnecting, nor hammer the broker with reconnects.
type devLimits struct {
	publishRate, connectRate   rate.Limit
	publishBurst, connectBurst int

	mu   sync.Mutex
	devs map[string]*devLimit
}

type devLimit struct {
	publish, connect *rate.Limiter
	// dropped is set when prune removes it from the map: a connection
	// holding it (see publish) then fetches the device's current one.
	dropped atomic.Bool
}

// maxLimitedDevices bounds the map: past it, devices whose buckets are full
// again (a fresh bucket would be the same) are dropped. Only authenticated
// devices get here, or anonymous bench clients.
const maxLimitedDevices = 4096

func newDevLimits(o Options) *devLimits {
	return &devLimits{
		publishRate: rate.Limit(o.PublishRate), publishBurst: o.PublishBurst,
		connectRate: rate.Limit(o.ConnectsPerMinute / 60), connectBurst: o.ConnectBurst,
		devs: map[string]*devLimit{},
	}
}

func (l *devLimits) get(device string, now time.Time) *devLimit {
	d := l.devs[device]
	if d == nil {
		if len(l.devs) >= maxLimitedDevices {
			l.prune(now)
		}
		d = &devLimit{publish: rate.NewLimiter(l.publishRate, l.publishBurst), connect: rate.NewLimiter(l.connectRate, l.connectBurst)}
		l.devs[device] = d
	}
	return d
}

// publish reports whether device may publish one more message at now.
// *held is the device's buckets as a connection last fetched them; they
// are fetched again once pruned. A publish racing the prune may take its
// token from the dropped bucket, which was full: one more publish than
// the burst, once, on a gateway with thousands of devices.
func (l *devLimits) publish(held **devLimit, device string, now time.Time) bool {
	d := *held
	if d == nil || d.dropped.Load() {
		l.mu.Lock()
		d = l.get(device, now)
		l.mu.Unlock()
		*held = d
	}
	return d.publish.AllowN(now, 1)
}

// connect reports whether device may open one more connection at now.
func (l *devLimits) connect(device string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.get(device, now).connect.AllowN(now, 1)
}

// prune drops the devices whose buckets are full. l.mu is held.
func (l *devLimits) prune(now time.Time) {
	for id, d := range l.devs {
		if d.publish.TokensAt(now) >= float64(l.publishBurst) && d.connect.TokensAt(now) >= float64(l.connectBurst) {
			d.dropped.Store(true)
			delete(l.devs, id)
		}
	}
}
