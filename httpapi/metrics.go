package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"fieldgate/sensors"
	"fieldgate/uplink"
)

// metrics are the Prometheus metrics behind /metrics: a few the API counts
// itself, the rest read from the components at scrape time.
type metrics struct {
	reg           *prometheus.Registry
	commit        prometheus.Histogram
	requests      *prometheus.CounterVec
	limited       prometheus.Counter
	loginFailures prometheus.Counter
	loginThrottle prometheus.Counter
	handler       http.Handler
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "fieldgate_commit_duration_seconds", Help: "Time to write and fdatasync one group commit of the write-ahead log.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5},
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldgate_http_requests_total", Help: "API requests by method and status code.",
		}, []string{"method", "code"}),
		limited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fieldgate_http_rate_limited_total", Help: "API requests refused with 429.",
		}),
		loginFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fieldgate_login_failures_total", Help: "API logins refused for a wrong user name or password.",
		}),
		loginThrottle: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fieldgate_login_throttled_total", Help: "API logins refused with 429 unchecked: the address or account failed too often.",
		}),
	}
	m.reg.MustRegister(m.commit, m.requests, m.limited, m.loginFailures, m.loginThrottle, &collector{s: s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{s}})
	return m
}

func (s *Server) serveMetrics(c *gin.Context) {
	s.metrics.handler.ServeHTTP(c.Writer, c.Request)
}

type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) { p.s.log.Warn("metrics", "err", v) }

// collector reads the gateway's state at scrape time.
type collector struct{ s *Server }

var (
	descCommitted   = prometheus.NewDesc("fieldgate_readings_committed_total", "Readings committed to the store since start.", nil, nil)
	descCommits     = prometheus.NewDesc("fieldgate_commits_total", "Group commits since start.", nil, nil)
	descStored      = prometheus.NewDesc("fieldgate_store_readings", "Readings held in the store.", nil, nil)
	descFile        = prometheus.NewDesc("fieldgate_store_file_bytes", "Size of the store file.", nil, nil)
	descUsed        = prometheus.NewDesc("fieldgate_store_used_bytes", "Bytes of the store file holding live data.", nil, nil)
	descMax         = prometheus.NewDesc("fieldgate_store_max_bytes", "The store's hard size cap.", nil, nil)
	descFailing     = prometheus.NewDesc("fieldgate_store_commit_failing", "1 while commits fail (disk full, I/O errors).", nil, nil)
	descDropped     = prometheus.NewDesc("fieldgate_readings_dropped_total", "Readings the store accepted and then lost, by reason (full_drop_oldest, full_reject_new, commit_failed, dead_letter_discarded).", []string{"reason"}, nil)
	descRetained    = prometheus.NewDesc("fieldgate_readings_retention_deleted_total", "Delivered readings retention deleted (routine: not a loss).", nil, nil)
	descBacklog     = prometheus.NewDesc("fieldgate_uplink_backlog_readings", "Readings the cloud has not acknowledged.", nil, nil)
	descOldest      = prometheus.NewDesc("fieldgate_uplink_oldest_unsent_age_seconds", "Age of the oldest reading not yet uploaded.", nil, nil)
	descUplinkUp    = prometheus.NewDesc("fieldgate_uplink_online", "1 when the last upload succeeded.", nil, nil)
	descUplinkSent  = prometheus.NewDesc("fieldgate_uplink_sent_total", "Readings the cloud acknowledged since start.", nil, nil)
	descUplinkRetry = prometheus.NewDesc("fieldgate_uplink_errors_total", "Failed upload attempts since start.", nil, nil)
	descDeadLetter  = prometheus.NewDesc("fieldgate_uplink_dead_lettered_total", "Batches the cloud refused for good since start.", nil, nil)
	descHeld        = prometheus.NewDesc("fieldgate_uplink_held_readings", "Unsent readings waiting for the system clock to synchronise (see /api/v1/status uplink.held).", nil, nil)
	descAutonomy    = prometheus.NewDesc("fieldgate_autonomy_seconds", "With the uplink down, how long until the store is full of readings the cloud never got, at the current rate (absent while unknown).", nil, nil)
	descIngestRate  = prometheus.NewDesc("fieldgate_ingest_readings_per_hour", "Readings stored per hour over the last hour.", nil, nil)
	descPerReading  = prometheus.NewDesc("fieldgate_store_bytes_per_reading", "What a stored reading takes in the store file, measured (0 while unknown).", nil, nil)
	descDiskFree    = prometheus.NewDesc("fieldgate_store_disk_free_bytes", "Free space of the store's file system.", nil, nil)
	descHoldLeft    = prometheus.NewDesc("fieldgate_uplink_hold_left_seconds", "Time until readings held for the clock go flagged unsynced (clock.upload_hold); 0 when none are held.", nil, nil)
	descClients     = prometheus.NewDesc("fieldgate_mqtt_clients", "MQTT clients connected.", nil, nil)
	descMessages    = prometheus.NewDesc("fieldgate_mqtt_messages_total", "MQTT PUBLISH packets received.", nil, nil)
	descIngested    = prometheus.NewDesc("fieldgate_mqtt_readings_total", "Readings taken from MQTT payloads.", nil, nil)
	descRejected    = prometheus.NewDesc("fieldgate_mqtt_rejected_total", "MQTT payloads, packets, logins and publishes refused.", nil, nil)
	descRefused     = prometheus.NewDesc("fieldgate_mqtt_refused_total", "MQTT connections, logins, packets and publishes refused, by reason.", []string{"reason"}, nil)
	descSensor      = prometheus.NewDesc("fieldgate_sensor_state", "1 for each local sensor's current state.", []string{"sensor", "source", "state"}, nil)
	descWSClients   = prometheus.NewDesc("fieldgate_ws_clients", "Live stream (WebSocket) clients connected.", nil, nil)
	descLogBroken   = prometheus.NewDesc("fieldgate_wal_broken", "1 while a failed write or fdatasync is being recovered from (writes refused), 2 once the store failed (the daemon restarts).", nil, nil)
	descLogDamage   = prometheus.NewDesc("fieldgate_wal_damage_total", "Places where replay found the write-ahead log not as written, over the store's life: torn (a power cut before a sync: nothing lost) or corrupt (synced records damaged on the card).", []string{"kind"}, nil)
	descLogLost     = prometheus.NewDesc("fieldgate_wal_lost_readings_total", "Readings known lost to damaged log records, over the store's life.", nil, nil)
	descQuarantined = prometheus.NewDesc("fieldgate_wal_quarantined_files", "Damaged log segment files kept as evidence.", nil, nil)
	descAPIConns    = prometheus.NewDesc("fieldgate_api_connections", "Open API connections (WebSocket streams included).", nil, nil)
	descAPIRefused  = prometheus.NewDesc("fieldgate_api_refused_total", "API connections closed at once at the connection cap (cap) or at one address's share of it (address).", []string{"reason"}, nil)
	descAPIIdle     = prometheus.NewDesc("fieldgate_api_idle_closed_total", "Idle keep-alive API connections closed because the API was near its cap.", nil, nil)
	descRecoveries  = prometheus.NewDesc("fieldgate_wal_recoveries_total", "Failed log writes or syncs recovered from since start.", nil, nil)
)

// Describe sends nothing: the collector is unchecked, since which metrics
// exist depends on the components that are switched on.
func (c *collector) Describe(chan<- *prometheus.Desc) {}

// Collect reads every component once.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	st := s.st.Stats()
	counter(descCommitted, float64(st.Committed))
	counter(descCommits, float64(st.Commits))
	gauge(descStored, float64(st.Readings))
	gauge(descFile, float64(st.FileBytes))
	gauge(descUsed, float64(st.UsedBytes))
	gauge(descMax, float64(st.MaxBytes))
	gauge(descFailing, b2f(st.Err != nil))
	broken := 0.0
	switch {
	case st.Failed != nil:
		broken = 2
	case st.LogBroken != nil:
		broken = 1
	}
	gauge(descLogBroken, broken)
	counter(descLogDamage, float64(st.TornTails), "torn")
	counter(descLogDamage, float64(st.LogCorrupt), "corrupt")
	counter(descLogLost, float64(st.LostReadings))
	gauge(descQuarantined, float64(len(st.Quarantined)))
	counter(descRecoveries, float64(st.LogRecoveries))
	if dropped, retired, err := s.st.Removed(); err == nil {
		for reason, n := range dropped {
			counter(descDropped, float64(n), reason)
		}
		counter(descRetained, float64(retired))
	}
	gauge(descIngestRate, st.IngestPerHour)
	gauge(descPerReading, st.BytesPerReading)
	gauge(descDiskFree, float64(st.DiskFree))
	var u uplink.Status
	if s.deps.Uplink != nil {
		u = s.deps.Uplink.Status()
	}
	if a, _ := s.autonomy(st, s.deps.Uplink != nil, u.Backlog, u.State, u.OfflineSince, s.opts.Now()); a.Seconds != nil {
		gauge(descAutonomy, *a.Seconds)
	}
	if s.deps.Uplink != nil {
		gauge(descBacklog, float64(u.Backlog))
		age := 0.0
		if !u.OldestUnsent.IsZero() {
			age = max(0, s.opts.Now().Sub(u.OldestUnsent).Seconds())
		}
		gauge(descOldest, age)
		gauge(descUplinkUp, b2f(u.State == "online"))
		counter(descUplinkSent, float64(u.Sent))
		counter(descUplinkRetry, float64(u.Retries))
		counter(descDeadLetter, float64(u.DeadLettered))
		gauge(descHeld, float64(u.HeldForClock))
		gauge(descHoldLeft, s.holdLeft(u).Seconds())
	}
	if s.deps.Broker != nil {
		m := s.deps.Broker.Stats()
		gauge(descClients, float64(m.Clients))
		counter(descMessages, float64(m.Messages))
		counter(descIngested, float64(m.Readings))
		counter(descRejected, float64(m.RejectedTotal()))
		for reason, n := range m.Refused() {
			counter(descRefused, float64(n), reason)
		}
	}
	if s.deps.Sensors != nil {
		for _, h := range s.deps.Sensors.Health() {
			for _, state := range []sensors.State{sensors.StateStarting, sensors.StateOK, sensors.StateDegraded, sensors.StateFailing} {
				gauge(descSensor, b2f(h.State == state), h.Name, h.Source, string(state))
			}
		}
	}
	gauge(descWSClients, float64(s.hub.count()))
	cs := s.ConnStats()
	gauge(descAPIConns, float64(cs.Open))
	counter(descAPIRefused, float64(cs.RefusedCap), "cap")
	counter(descAPIRefused, float64(cs.RefusedAt), "address")
	counter(descAPIIdle, float64(cs.IdleClosed))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
