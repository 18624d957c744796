package receiver

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the receiver's Prometheus metrics.
type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	batches    *prometheus.CounterVec
	readings   prometheus.Counter
	duplicates prometheus.Counter
	dbErrors   prometheus.Counter
	busy       prometheus.Counter
	latency    prometheus.Histogram
	inFlight   prometheus.Gauge
	queued     prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldgate_cloud_requests_total",
			Help: "Batch requests answered, by HTTP status."}, []string{"code"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldgate_cloud_batches_total",
			Help: "Batches by outcome: stored (new), replay (stored before, same readings), conflict (stored before, other readings: 409)."}, []string{"outcome"}),
		readings: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldgate_cloud_readings_stored_total",
			Help: "Readings inserted."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldgate_cloud_readings_duplicate_total",
			Help: "Readings of new batches that were stored already (overlapping batches)."}),
		dbErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldgate_cloud_database_errors_total",
			Help: "Requests answered 503 because the database failed or was too slow."}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldgate_cloud_busy_total",
			Help: "Requests answered 503 because max-in-flight batches were being handled and the queue was full or the request waited queue-wait."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fieldgate_cloud_batch_seconds",
			Help:    "Time from request to commit of stored batches.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "fieldgate_cloud_requests_in_flight",
			Help: "Batch requests being handled now."}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{Name: "fieldgate_cloud_requests_queued",
			Help: "Requests waiting for one of max-in-flight's slots now."}),
	}
	for _, o := range []string{"stored", "replay", "conflict"} {
		m.batches.WithLabelValues(o) // present at zero
	}
	m.reg.MustRegister(m.requests, m.batches, m.readings, m.duplicates, m.dbErrors, m.busy, m.latency, m.inFlight, m.queued,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// fleetCollector reports the fleet at a glance on every scrape, from the
// gateways' last statuses: labels are bounded (a state, not a gateway id,
// so two hundred gateways make four series).
type fleetCollector struct{ db *DB }

var (
	descGateways = prometheus.NewDesc("fieldgate_cloud_gateways", "Gateways by state: current, behind (oldest unsent reading older than 10 minutes), silent (no request for 15 minutes), unreported (no status yet).", []string{"state"}, nil)
	descMaxLag   = prometheus.NewDesc("fieldgate_cloud_gateway_lag_seconds_max", "The largest age of a gateway's oldest unsent reading, over the gateways not silent, as they reported it.", nil, nil)
	descBacklog  = prometheus.NewDesc("fieldgate_cloud_gateway_backlog_readings", "Readings the gateways not silent reported waiting to send.", nil, nil)
)

// Describe implements prometheus.Collector.
func (fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descGateways
	ch <- descMaxLag
	ch <- descBacklog
}

// Collect implements prometheus.Collector; without the database it
// reports nothing (/readyz says why).
func (c fleetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	f, err := c.db.Fleet(ctx, time.Now())
	if err != nil {
		return
	}
	for state, n := range f.States {
		ch <- prometheus.MustNewConstMetric(descGateways, prometheus.GaugeValue, float64(n), state)
	}
	ch <- prometheus.MustNewConstMetric(descMaxLag, prometheus.GaugeValue, f.MaxLag.Seconds())
	ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(f.Backlog))
}
