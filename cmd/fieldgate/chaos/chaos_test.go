package chaos

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/sys/unix"

	"fieldgate/cmd/fieldgate-bench/fleet"
	"fieldgate/cmd/fieldgate/daemontest"
	"fieldgate/cmd/fieldgate/testenv"
	"fieldgate/store"
	"fieldgate/store/storetest"
	"fieldgate/uplink/sink"
)

var (
	chaosDuration = flag.Duration("chaos.duration", 0,
		"how long TestChaos injects faults (default: one pass through the faults, 2m with FIELDGATE_TEST_LONG=1 as in CI; by hand: go test -run TestChaos ./cmd/fieldgate/chaos -args -chaos.duration=30m)")
	chaosSummary = flag.String("chaos.summary", "", "file to write TestChaos's summary to, as JSON (fieldgate-bench report reads it)")
)

// chaosFault is one kind of fault and how to start and end it.
type chaosFault struct {
	name       string
	start, end func()
}

// chaosRun is the state of a chaos run: the daemon, the cloud and what was
// done to them.
type chaosRun struct {
	t        *testing.T
	bin, cfg string
	dataDir  string
	cloud    chaosCloud
	d        *daemontest.Daemon
	exited   chan error    // the current daemon's exit
	killed   atomic.Bool   // the current daemon was SIGKILLed: start another
	killDone chan struct{} // closed once the scheduled SIGKILL was done
	fdLimit  unix.Rlimit   // the daemon's descriptor limit before "descriptors"
	length   time.Duration // of the fault injection
	restarts int
	began    time.Time
	injected map[string]int
	samples  []chaosSample
}

type chaosSample struct {
	at                 time.Time
	rssKB, goroutines  int64
	backlog            float64
	sinceStart         time.Duration
	daemonGeneration   int
	acknowledgedByThen int
}

// TestChaos runs one daemon with the reference receiver as its cloud (two
// fieldgate-cloud replicas on PostgreSQL; the in-memory sink where
// PostgreSQL is not installed) and a fleet of registered nodes publishing
// QoS 1, and injects faults on a schedule: SIGKILL and restart; the cloud
// down, slow, answering 503 with Retry-After, resetting connections,
// dropping responses after committing, a receiver SIGKILLed, PostgreSQL
// restarted;
// the store's disk filled and freed; the descriptor limit held at what the
// daemon has open (every accept fails); throughout, a rogue device sends
// malformed packets, bad payloads and readings on another node's topic. In
// the end every acknowledged reading is in the cloud exactly once with its
// value, nothing of the rogue's is stored, the daemon never exited on its
// own, the file passes bbolt's check, and memory and goroutines are flat.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("a chaos run takes minutes")
	}
	r := &chaosRun{t: t, bin: daemontest.Build(t), dataDir: storetest.MountTmpfs(t, "96m"), injected: map[string]int{}, began: time.Now()}
	cloud, token := newChaosCloud(t, "gw-chaos")
	r.cloud = cloud
	r.cfg = daemontest.WriteConfig(t, fmt.Sprintf(`data_dir: %s
gateway:
  id: gw-chaos
sensors: []
mqtt:
  listen: 127.0.0.1:0
api:
  listen: 127.0.0.1:0
clock:
  trust: system
store:
  max_size: 48MiB
uplink:
  url: %s
  token: %s
  batch_max_readings: 200
  flush_interval: 100ms
  backoff_base: 50ms
  backoff_max: 2s
  timeout: 5s
`, r.dataDir, cloud.URL(), token))
	nodes := make([]fleet.Node, 10)
	for i := range nodes {
		id := fmt.Sprintf("node-%02d", i)
		nodes[i] = fleet.Node{ID: id, Password: daemontest.AddDevice(t, r.bin, r.cfg, id)}
	}
	roguePW := daemontest.AddDevice(t, r.bin, r.cfg, "rogue")
	r.start()

	var filler string
	faults := []chaosFault{
		{"none", func() {}, func() {}},
		{"sigkill", func() {
			d, exited, done := r.d, r.exited, make(chan struct{})
			r.killDone = done
			time.AfterFunc(1500*time.Millisecond, func() { r.kill(d, exited); close(done) })
		}, func() { <-r.killDone }}, // the nodes may give up before the kill lands: wait for it
		{"cloud down", func() { r.cloud.SetFaults(sink.Faults{Down: true}) }, r.cloudOK},
		{"cloud slow", func() { r.cloud.SetFaults(sink.Faults{Delay: 1500 * time.Millisecond}) }, r.cloudOK},
		{"cloud 503", func() { r.cloud.SetFaults(sink.Faults{Unavailable: 1, RetryAfter: time.Second}) }, r.cloudOK},
		{"cloud resets", func() { r.cloud.SetFaults(sink.Faults{Reset: 0.5}) }, r.cloudOK},
		{"cloud drops responses", func() { r.cloud.SetFaults(sink.Faults{DropResponse: 0.5}) }, r.cloudOK},
		{"descriptors", r.limitDescriptors, r.restoreDescriptors},
		{"disk full", func() { filler = storetest.FillDisk(t, r.dataDir) }, func() { _ = os.Remove(filler) }},
	}
	faults = append(faults, cloud.faults()...)
	const segment = 4 * time.Second
	r.length = *chaosDuration
	if r.length == 0 {
		r.length = time.Duration(len(faults)) * segment
		if testenv.Long() {
			r.length = 2 * time.Minute
		}
	}
	var acked []fleet.Ack
	var errs int
	begin := time.Now()
	for seg := 0; time.Since(begin) < r.length; seg++ {
		f := faults[seg%len(faults)]
		r.injected[f.name]++
		f.start()
		ctx, cancel := context.WithTimeout(context.Background(), segment)
		go r.rogue(ctx, r.d.MQTT, roguePW)
		res, err := fleet.Run(ctx, fleet.Config{Broker: r.d.MQTT, Nodes: nodes, Rate: 5, QoS: 1, Start: uint64(seg) * 1_000_000}, segment)
		cancel()
		if err != nil && f.name != "sigkill" && f.name != "disk full" && f.name != "descriptors" {
			t.Fatalf("segment %d (%s): %v", seg, f.name, err)
		}
		if res != nil {
			acked = append(acked, res.Acked...)
			errs += res.Errors
		}
		f.end()
		if r.killed.Swap(false) {
			r.start()
		}
		r.sample(begin, len(acked))
	}
	injectEnd := time.Now()
	r.cloudOK()
	r.waitDrained(2 * time.Minute)
	drain := time.Since(injectEnd)
	r.stop()
	r.verify(acked, errs, drain)
}

// limitDescriptors holds the daemon's descriptor limit at what it has open,
// as a flood of sockets would: accepts, dials and file opens fail with
// EMFILE until restoreDescriptors. The fleet must get back in by itself.
func (r *chaosRun) limitDescriptors() {
	pid := r.d.Cmd.Process.Pid
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		r.t.Fatal(err)
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &r.fdLimit); err != nil {
		r.t.Fatal(err)
	}
	low := unix.Rlimit{Cur: uint64(len(fds)), Max: r.fdLimit.Max}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &low, nil); err != nil {
		r.t.Fatal(err)
	}
}

// restoreDescriptors gives the daemon its limit back, after checking (the
// first time: the log is rate-limited) that the limit bit.
func (r *chaosRun) restoreDescriptors() {
	if r.injected["descriptors"] == 1 && !slices.ContainsFunc(r.d.Logged(), func(l string) bool { return strings.Contains(l, "cannot accept") }) {
		r.t.Error("the daemon never ran out of descriptors: no accept failed")
	}
	if err := unix.Prlimit(r.d.Cmd.Process.Pid, unix.RLIMIT_NOFILE, &r.fdLimit, nil); err != nil {
		r.t.Fatal(err)
	}
}

// start runs the daemon and watches that it never exits on its own.
func (r *chaosRun) start() {
	r.t.Helper()
	r.d = daemontest.Start(r.t, r.bin, r.cfg)
	r.restarts++
	exited := make(chan error, 1)
	cmd := r.d.Cmd
	go func() { exited <- cmd.Wait() }()
	r.exited = exited
}

// kill SIGKILLs daemon d, unless it already died (which fails the run).
func (r *chaosRun) kill(d *daemontest.Daemon, exited chan error) {
	select {
	case err := <-exited:
		r.t.Errorf("the daemon exited on its own: %v", err)
	default:
		_ = d.Cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
	r.killed.Store(true)
}

// stop ends the daemon with SIGTERM; it must exit cleanly.
func (r *chaosRun) stop() {
	r.t.Helper()
	select {
	case err := <-r.exited:
		r.t.Fatalf("the daemon exited on its own: %v", err)
	default:
	}
	if err := r.d.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		r.t.Fatal(err)
	}
	select {
	case err := <-r.exited:
		if err != nil {
			r.t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		r.t.Fatal("no exit 30 s after SIGTERM")
	}
}

func (r *chaosRun) cloudOK() { r.cloud.SetFaults(sink.Faults{}) }

// rogue misbehaves until ctx ends: garbage bytes where an MQTT packet
// should be, a payload that is not a number, and a reading on another
// node's topic (valued 666666, so a leak would show).
func (r *chaosRun) rogue(ctx context.Context, addr, pw string) {
	for ctx.Err() == nil {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_, _ = c.Write([]byte{0x10, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x04, 'M', 'Q'}) // CONNECT with an impossible length
			_ = c.Close()
		}
		cl := paho3.NewClient(paho3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("rogue").
			SetUsername("rogue").SetPassword(pw).SetAutoReconnect(false))
		if tok := cl.Connect(); tok.WaitTimeout(time.Second) && tok.Error() == nil {
			cl.Publish("fieldgate/rogue/temperature", 1, false, "not a number").WaitTimeout(time.Second)
			cl.Publish("fieldgate/node-00/illuminance", 1, false, "666666") // unbounded: only the ACL stops it.WaitTimeout(time.Second)
			cl.Publish("tele/rogue/SENSOR", 1, false, `{"SHT3X":{"Temperature":`).WaitTimeout(time.Second)
			cl.Disconnect(0)
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// sample records the daemon's memory, goroutines and backlog.
func (r *chaosRun) sample(begin time.Time, acked int) {
	s := chaosSample{at: time.Now(), sinceStart: time.Since(begin), daemonGeneration: r.restarts, acknowledgedByThen: acked}
	s.rssKB, _ = daemontest.ProcStatusKB(r.d.Cmd.Process.Pid, "RssAnon") // the heap; the store's file map is not a leak
	c := &daemontest.API{TB: r.t, Base: r.d.API + "/api/v1"}
	if code, st := c.Do("GET", "/status", nil); code == 200 {
		s.backlog = st["uplink"].(map[string]any)["backlog"].(float64)
	}
	s.goroutines = daemontest.Metric(r.t, r.d.API, "go_goroutines")
	r.samples = append(r.samples, s)
}

// waitDrained waits until the cloud acknowledged every stored reading.
func (r *chaosRun) waitDrained(within time.Duration) {
	r.t.Helper()
	c := &daemontest.API{TB: r.t, Base: r.d.API + "/api/v1"}
	daemontest.WaitUntil(r.t, within, func() bool {
		_, st := c.Do("GET", "/status", nil)
		return st["uplink"].(map[string]any)["backlog"].(float64) == 0
	})
}

// verify checks the outcome and logs the summary table.
func (r *chaosRun) verify(acked []fleet.Ack, errs int, drain time.Duration) {
	t := r.t
	t.Helper()
	inCloud := map[string]int{}
	for _, rb := range r.cloud.Readings() {
		if rb.Source == "rogue" || rb.Value == 666666 {
			t.Errorf("the rogue's reading reached the cloud: %+v", rb)
		}
		// Plain payloads carry no time: the gateway stamped each on arrival.
		if at, err := time.Parse(time.RFC3339Nano, rb.Time); err != nil || at.Before(r.began) || at.After(time.Now()) || rb.Clock != "synced" {
			t.Errorf("reading %s/%v arrived with time %s (%s), want a synced time within the run", rb.Source, rb.Value, rb.Time, rb.Clock)
		}
		inCloud[rb.Source+" "+strconv.FormatFloat(rb.Value, 'f', -1, 64)]++
	}
	lost, twice := 0, 0
	for _, a := range acked {
		switch inCloud[fmt.Sprintf("%s %d", a.Node, a.N)] {
		case 0:
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged reading %s #%d is not in the cloud", a.Node, a.N)
			}
		case 1:
		default:
			twice++
		}
	}
	st, err := store.Open(store.Options{Path: filepath.Join(r.dataDir, "fieldgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Check(); err != nil {
		t.Errorf("tx.Check after the run: %v", err)
	}
	rogue, err := st.Count(store.Query{Source: "rogue", Quantity: "temperature"})
	if err != nil || rogue != 0 {
		t.Errorf("%d of the rogue's readings are stored (%v)", rogue, err)
	}
	_ = st.Close()
	if lost > 0 || twice > 0 {
		t.Errorf("%d acknowledged readings lost, %d in the cloud more than once", lost, twice)
	}
	rss0, rss1, g0, g1 := r.flat()

	duplicates, replays := r.cloud.absorbed()
	r.cloud.consistent(t)
	maxBacklog := slices.MaxFunc(r.samples, func(a, b chaosSample) int { return int(a.backlog - b.backlog) }).backlog
	kinds := make([]string, 0, len(r.injected))
	for k, n := range r.injected {
		kinds = append(kinds, fmt.Sprintf("%s ×%d", k, n))
	}
	slices.Sort(kinds)
	t.Logf(`chaos run summary (%s of faults):
  readings acknowledged       %d (publishes not acknowledged: %d)
  in the cloud                %d distinct readings from the nodes, acknowledged or not
  duplicates absorbed         %d readings, %d batch replays
  lost                        %d
  faults injected             %s
  daemon starts               %d
  max backlog                 %.0f readings
  drain after the last fault  %s
  anonymous RSS               %d → %d KiB, goroutines %d → %d (peaks per daemon generation, medians of the first and last minute or quarter)`,
		r.length, len(acked), errs, len(inCloud), duplicates, replays, lost,
		strings.Join(kinds, ", "), r.restarts, maxBacklog, drain.Round(time.Millisecond), rss0, rss1, g0, g1)
	if *chaosSummary != "" {
		r.writeSummary(map[string]float64{"minutes": r.length.Minutes(), "acknowledged": float64(len(acked)), "not-acknowledged": float64(errs),
			"in-cloud": float64(len(inCloud)), "lost": float64(lost), "twice": float64(twice), "duplicate-readings": float64(duplicates),
			"replays": float64(replays), "starts": float64(r.restarts), "max-backlog": maxBacklog, "drain-ms": float64(drain.Milliseconds()),
			"rss-first-MiB": float64(rss0) / 1024, "rss-last-MiB": float64(rss1) / 1024, "goroutines-first": float64(g0), "goroutines-last": float64(g1),
			"rogue-stored": float64(rogue)})
	}
}

// writeSummary writes the run's figures, with the faults injected by kind,
// to -chaos.summary for fieldgate-bench report.
func (r *chaosRun) writeSummary(sum map[string]float64) {
	for k, n := range r.injected {
		sum["fault:"+k] = float64(n)
	}
	b, err := json.Marshal(sum)
	if err == nil {
		err = os.WriteFile(*chaosSummary, b, 0o644)
	}
	if err != nil {
		r.t.Error(err)
	}
}

// flat compares memory and goroutines (medians) between the first and the
// last minute of the run, or its first and last quarter when it is shorter
// than four minutes, and returns them.
func (r *chaosRun) flat() (rss0, rss1, g0, g1 int64) {
	t := r.t
	n := len(r.samples)
	if n < 8 {
		t.Logf("only %d samples: too few to compare the start and the end", n)
		return
	}
	// A SIGKILL starts a fresh process, so samples are compared per daemon
	// generation: the peak anonymous memory and goroutines of each, those
	// that lived in the first window against those of the last.
	total := r.samples[n-1].sinceStart
	window := min(time.Minute, total/4)
	type peak struct{ rss, g int64 }
	var first, last []peak
	for i := 0; i < n; {
		j, p := i, peak{}
		for ; j < n && r.samples[j].daemonGeneration == r.samples[i].daemonGeneration; j++ {
			p.rss, p.g = max(p.rss, r.samples[j].rssKB), max(p.g, r.samples[j].goroutines)
		}
		if r.samples[i].sinceStart <= window {
			first = append(first, p)
		}
		if r.samples[j-1].sinceStart >= total-window {
			last = append(last, p)
		}
		i = j
	}
	median := func(ps []peak, f func(peak) int64) int64 {
		v := make([]int64, len(ps))
		for i, p := range ps {
			v[i] = f(p)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	rss0, rss1 = median(first, func(p peak) int64 { return p.rss }), median(last, func(p peak) int64 { return p.rss })
	g0, g1 = median(first, func(p peak) int64 { return p.g }), median(last, func(p peak) int64 { return p.g })
	if rss1 > rss0*3/2+16<<10 {
		t.Errorf("anonymous memory grew from %d to %d KiB", rss0, rss1)
	}
	if g1 > g0+50 {
		t.Errorf("goroutines grew from %d to %d", g0, g1)
	}
	return rss0, rss1, g0, g1
}
