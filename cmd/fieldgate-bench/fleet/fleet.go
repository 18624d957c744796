// Package fleet simulates ESP32 nodes publishing readings over real MQTT
// (3.1.1 over TCP, packets encoded by mochi's codec): N clients, open loop
// (a rate each) or closed loop (as fast as acknowledgements come back),
// QoS 0 or 1, in the payload shapes nodes use.
// Every reading carries its node's sequence number as its value, and every
// PUBACKed one is recorded, so a run can count afterwards what was lost.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Shape is a payload format.
type Shape string

// Payload shapes (broker/topic.go lists the topics fieldgate ingests). A
// reading's value is its number n, which identifies it when the store or
// the cloud is checked: the quantity is illuminance, which has no physical
// bounds the gateway enforces (a temperature of 42,000 would be refused).
const (
	Plain   Shape = "plain"   // fieldgate/{node}/illuminance: "42"
	SenML   Shape = "senml"   // fieldgate/{node}/senml: [{"n":"illuminance","u":"lx","v":42}]
	ESPHome Shape = "esphome" // {node}/sensor/illuminance/state: "42"
	Tasmota Shape = "tasmota" // tele/{node}/SENSOR: {"BH1750":{"Illuminance":42}}
)

// Shapes lists the payload shapes by name.
var Shapes = []Shape{Plain, SenML, ESPHome, Tasmota}

// message returns the topic and payload of reading n of node.
func (s Shape) message(node string, n uint64) (string, string) {
	v := strconv.FormatUint(n, 10)
	switch s {
	case SenML:
		return "fieldgate/" + node + "/senml", `[{"n":"illuminance","u":"lx","v":` + v + `}]`
	case ESPHome:
		return node + "/sensor/illuminance/state", v
	case Tasmota:
		return "tele/" + node + "/SENSOR", `{"BH1750":{"Illuminance":` + v + `}}`
	default:
		return "fieldgate/" + node + "/illuminance", v
	}
}

// Node is one simulated device: its client id (and username, with a
// password), and its password (empty: connects anonymously).
type Node struct {
	ID, Password string
}

// Config describes a fleet.
type Config struct {
	// Broker is host:port.
	Broker string
	// Nodes publish; Nodes[i].ID is client id, username and topic segment.
	Nodes []Node
	// Rate is each node's publishes per second (open loop); 0 publishes as
	// fast as acknowledgements allow (closed loop, QoS 1).
	Rate float64
	// QoS is 0 or 1.
	QoS byte
	// InFlight is how many QoS 1 publishes each node of a closed loop keeps
	// unacknowledged: 0 or 1 waits for each PUBACK (an ESP32 sending live
	// readings); more sends on meanwhile (a node replaying a backlog).
	InFlight int
	// Shape is the payload format. Default Plain.
	Shape Shape
	// Start numbers each node's readings from Start+1 (a later run against
	// the same store continues the sequence).
	Start uint64
}

// Ack is one acknowledged reading: node and sequence number (its value).
type Ack struct {
	Node string
	N    uint64
}

// Result is what a run measured.
type Result struct {
	// Acked are the readings the broker acknowledged (QoS 1) or that were
	// sent (QoS 0), in no order.
	Acked []Ack
	// Latencies are the PUBACK round trips (QoS 1), sorted.
	Latencies []time.Duration
	// Errors counts publishes that failed or timed out; Disconnects the
	// connections lost during the run.
	Errors, Disconnects int
	// Elapsed is the run's length.
	Elapsed time.Duration
}

// Rate returns acknowledged readings per second.
func (r *Result) Rate() float64 { return float64(len(r.Acked)) / r.Elapsed.Seconds() }

// Percentile returns the p-th latency (0 < p ≤ 100), or 0 without any.
func (r *Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.Latencies))*p/100+0.5) - 1
	return r.Latencies[min(max(i, 0), len(r.Latencies)-1)]
}

// Run connects the nodes, publishes until ctx ends or d passes, and
// disconnects them.
func Run(ctx context.Context, c Config, d time.Duration) (*Result, error) {
	if c.QoS > 1 {
		return nil, fmt.Errorf("fleet: QoS %d: want 0 or 1", c.QoS)
	}
	if c.Rate <= 0 && c.QoS == 0 {
		return nil, errors.New("fleet: a closed loop needs QoS 1 (QoS 0 has no acknowledgement to wait for)")
	}
	if c.Shape == "" {
		c.Shape = Plain
	}
	if !slices.Contains(Shapes, c.Shape) {
		return nil, fmt.Errorf("fleet: unknown payload shape %q", c.Shape)
	}
	res := &Result{}
	var mu sync.Mutex
	clients := make([]*client, len(c.Nodes))
	for i, n := range c.Nodes {
		var err error
		if clients[i], err = dial(c.Broker, n, timeout); err != nil {
			disconnect(clients[:i])
			return nil, fmt.Errorf("fleet: connect %s: %w", n.ID, err)
		}
	}
	defer disconnect(clients)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acks, lats, errs, lost := publish(ctx, cl, c, c.Nodes[i].ID)
			mu.Lock()
			res.Acked = append(res.Acked, acks...)
			res.Latencies = append(res.Latencies, lats...)
			res.Errors += errs
			if lost {
				res.Disconnects++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	slices.Sort(res.Latencies)
	return res, nil
}

// timeout bounds a connect and each publish's acknowledgement.
const timeout = 10 * time.Second

// publish is one node's loop. It ends with ctx, or when the connection is
// lost (lost is then true).
func publish(ctx context.Context, cl *client, c Config, node string) (acks []Ack, lats []time.Duration, errs int, lost bool) {
	if c.Rate <= 0 && c.QoS > 0 && c.InFlight > 1 {
		return pipeline(ctx, cl, c, node)
	}
	var tick <-chan time.Time
	if c.Rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / c.Rate))
		defer t.Stop()
		tick = t.C
	}
	for n := c.Start + 1; ; n++ {
		if tick != nil {
			select {
			case <-ctx.Done():
				return
			case <-tick:
			}
		} else if ctx.Err() != nil {
			return
		}
		topic, payload := c.Shape.message(node, n)
		t0 := time.Now()
		if err := cl.publish(topic, payload, c.QoS, timeout); err != nil {
			errs++
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue // no PUBACK in time: the socket still stands
			}
			return acks, lats, errs, true // the socket is gone
		}
		if c.QoS > 0 {
			lats = append(lats, time.Since(t0))
		}
		acks = append(acks, Ack{Node: node, N: n})
	}
}

// pipeline is one node's closed loop with c.InFlight publishes in flight:
// it sends until that many wait, then reads the oldest one's PUBACK, which
// must come first (MQTT acknowledges in order). When ctx ends it collects
// the PUBACKs still due.
func pipeline(ctx context.Context, cl *client, c Config, node string) (acks []Ack, lats []time.Duration, errs int, lost bool) {
	type sent struct {
		id uint16
		n  uint64
		at time.Time
	}
	var due []sent
	for n := c.Start + 1; ; {
		for len(due) < c.InFlight && ctx.Err() == nil {
			topic, payload := c.Shape.message(node, n)
			id, err := cl.send1(topic, payload, c.QoS, timeout)
			if err != nil {
				return acks, lats, errs + 1, true
			}
			due = append(due, sent{id, n, time.Now()})
			n++
		}
		if len(due) == 0 {
			return acks, lats, errs, false
		}
		id, err := cl.ack(timeout)
		if err != nil || id != due[0].id {
			return acks, lats, errs + len(due), true // no PUBACK, or one out of order
		}
		lats = append(lats, time.Since(due[0].at))
		acks = append(acks, Ack{Node: node, N: due[0].n})
		due = due[1:]
	}
}

func disconnect(cs []*client) {
	for _, c := range cs {
		c.close()
	}
}

// Anonymous returns n nodes named prefix-000… without passwords.
func Anonymous(prefix string, n int) []Node {
	out := make([]Node, n)
	for i := range out {
		out[i] = Node{ID: fmt.Sprintf("%s-%03d", prefix, i)}
	}
	return out
}
