// Package cloudtest runs fieldgate's cloud receiver the way a fleet runs
// it, for end-to-end tests: a PostgreSQL server, replicas of the
// fieldgate-cloud binary sharing its database, and a front that sends
// requests to the replicas in turn (a load balancer) and can inject faults
// (sink.Faults). It records every answer, to prove that each replay of a
// batch was answered as the first time.
package cloudtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"fieldgate/cmd/fieldgate-cloud/receiver/pgtest"
	"fieldgate/uplink/sink"
	"fieldgate/uplink/wire"
)

// Build builds fieldgate-cloud into a temporary directory.
func Build(tb testing.TB) string {
	tb.Helper()
	return GoBuild(tb, "fieldgate/cmd/fieldgate-cloud")
}

// GoBuild builds the command pkg into a temporary directory and returns
// the binary's path.
func GoBuild(tb testing.TB, pkg string) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), filepath.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// Rig is a running cloud: its database, its replicas and their front.
type Rig struct {
	tb    testing.TB
	bin   string
	PG    *pgtest.Server
	DBURL string
	// Token is the gateway's bearer token.
	Token string

	replicas []*replica
	next     atomic.Uint64
	inj      *sink.Injector
	front    *httptest.Server

	mu      sync.Mutex
	answers map[string]string // idempotency key → first 2xx body
	stats   Stats
}

// Stats are what the front saw.
type Stats struct {
	Requests int // forwarded to a replica
	Stored   int // batches answered 2xx the first time
	Replays  int // batches answered 2xx again, with the same body
	// ReplayedReadings counts the readings of those replays: duplicates
	// the receiver absorbed.
	ReplayedReadings int
	Differed         int // replays answered with another body: must stay 0
	Conflicts        int // 409s: must stay 0
	Failed           int // 5xx and unreachable replicas
}

type replica struct {
	mu   sync.Mutex
	cmd  *exec.Cmd
	addr string
	done chan struct{}
	err  error // the exit, once done is closed
	log  *os.File
}

// Start runs PostgreSQL, registers gateway and starts n replicas of the
// receiver built by Build. Everything stops at the end of tb. It skips
// without PostgreSQL, unless FIELDGATE_REQUIRE_ALL=1.
func Start(tb testing.TB, bin, gateway string, n int) *Rig {
	tb.Helper()
	pg := pgtest.Start(tb)
	return StartOn(tb, bin, gateway, n, pg, pg.URL("postgres"))
}

// StartOn is Start on a PostgreSQL of the caller's, reached with dbURL
// (several hosts, for a failover).
func StartOn(tb testing.TB, bin, gateway string, n int, pg *pgtest.Server, dbURL string) *Rig {
	tb.Helper()
	r := &Rig{tb: tb, bin: bin, PG: pg, DBURL: dbURL, answers: map[string]string{}}
	if out, err := r.command("migrate").CombinedOutput(); err != nil {
		tb.Fatalf("fieldgate-cloud migrate: %v\n%s", err, out)
	}
	r.Token = r.AddGateway(gateway)
	for i := range n {
		r.replicas = append(r.replicas, &replica{})
		r.startReplica(i)
	}
	tb.Cleanup(func() {
		for _, rp := range r.replicas {
			rp.stop(syscall.SIGTERM)
		}
	})
	r.inj = sink.Inject(http.HandlerFunc(r.forward))
	r.front = httptest.NewServer(r.inj)
	tb.Cleanup(r.front.Close)
	return r
}

// AddGateway registers another gateway with "fieldgate-cloud gateway add"
// and returns its token.
func (r *Rig) AddGateway(id string) string {
	r.tb.Helper()
	out, err := r.command("gateway", "add", id).Output()
	if err != nil {
		r.tb.Fatalf("fieldgate-cloud gateway add %s: %v", id, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// CLI runs a fieldgate-cloud command on the rig's database and returns
// what it printed.
func (r *Rig) CLI(args ...string) (string, error) {
	out, err := r.command(args...).CombinedOutput()
	return string(out), err
}

func (r *Rig) command(args ...string) *exec.Cmd {
	cmd := exec.Command(r.bin, args...)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+r.DBURL)
	return cmd
}

// URL is the front's: the gateway's uplink.url.
func (r *Rig) URL() string { return r.front.URL }

// ReplicaURL is replica i's own address, bypassing the front.
func (r *Rig) ReplicaURL(i int) string { return "http://" + r.replicas[i].address() }

// SetFaults sets the faults the front injects from now on.
func (r *Rig) SetFaults(f sink.Faults) { r.inj.SetFaults(f) }

// KillReplica SIGKILLs replica i and starts it again; requests in flight
// to it fail meanwhile.
func (r *Rig) KillReplica(i int) {
	r.replicas[i].stop(syscall.SIGKILL)
	r.startReplica(i)
}

// RestartDatabase stops PostgreSQL (fast: transactions in flight roll back)
// and starts it again after pause.
func (r *Rig) RestartDatabase(pause time.Duration) {
	r.PG.Stop()
	time.Sleep(pause) // how long the database is away is the fault itself
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.PG.Start(ctx); err != nil {
		r.tb.Error(err)
	}
}

// startReplica starts replica i on a free port and waits for it to listen.
func (r *Rig) startReplica(i int) {
	r.tb.Helper()
	rp := r.replicas[i]
	cmd := r.command("serve", "-listen", "127.0.0.1:0", "-retry-after", "1s", "-shutdown-timeout", "10s")
	if rp.log == nil {
		var err error
		if rp.log, err = os.Create(filepath.Join(r.tb.TempDir(), fmt.Sprintf("replica-%d.log", i))); err != nil {
			r.tb.Fatal(err)
		}
	}
	cmd.Stderr = rp.log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		r.tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		r.tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		rp.mu.Lock()
		rp.err = err
		rp.mu.Unlock()
		close(done)
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		r.tb.Fatalf("replica %d did not start: %v (log %s)", i, err, rp.log.Name())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }() // nothing more is printed; keep the pipe drained
	f := strings.Fields(line)
	addr := strings.TrimPrefix(f[3], "http://")
	rp.mu.Lock()
	rp.cmd, rp.addr, rp.done = cmd, addr, done
	rp.mu.Unlock()
}

func (rp *replica) stop(sig syscall.Signal) {
	rp.mu.Lock()
	cmd, done := rp.cmd, rp.done
	rp.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig) // it may have exited
	<-done
}

// Signal sends sig to replica i and returns its exit, once it exits.
func (r *Rig) Signal(i int, sig syscall.Signal) <-chan error {
	rp := r.replicas[i]
	rp.mu.Lock()
	cmd, done := rp.cmd, rp.done
	rp.mu.Unlock()
	if err := cmd.Process.Signal(sig); err != nil {
		r.tb.Error(err)
	}
	exit := make(chan error, 1)
	go func() {
		<-done
		rp.mu.Lock()
		defer rp.mu.Unlock()
		exit <- rp.err
	}()
	return exit
}

func (rp *replica) address() string {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.addr
}

// forward sends a request to the next replica and records the answer.
func (r *Rig) forward(w http.ResponseWriter, req *http.Request) {
	rp := r.replicas[r.next.Add(1)%uint64(len(r.replicas))]
	target := &url.URL{Scheme: "http", Host: rp.address()}
	rec := &recorder{ResponseWriter: w}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		ModifyResponse: func(res *http.Response) error {
			b, err := io.ReadAll(res.Body)
			res.Body = io.NopCloser(strings.NewReader(string(b)))
			rec.body = string(b)
			return err
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	proxy.ServeHTTP(rec, req)
	if req.Method == http.MethodPut {
		r.record(req.Header.Get("Idempotency-Key"), rec.status, rec.body)
	}
}

func (r *Rig) record(key string, status int, body string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Requests++
	switch {
	case status == http.StatusConflict:
		r.stats.Conflicts++
	case status >= 500:
		r.stats.Failed++
	case status/100 == 2:
		first, seen := r.answers[key]
		switch {
		case !seen:
			r.answers[key] = body
			r.stats.Stored++
		case first == body:
			r.stats.Replays++
			var a struct{ Accepted int }
			_ = json.Unmarshal([]byte(body), &a) // a 2xx without a count adds 0
			r.stats.ReplayedReadings += a.Accepted
		default:
			r.stats.Differed++
		}
	}
}

// Stats returns what the front saw so far.
func (r *Rig) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Readings returns every reading in the database, by id ("gateway:seq").
func (r *Rig) Readings() map[string]wire.ReadingBody {
	r.tb.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, r.DBURL)
	if err != nil {
		r.tb.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT gateway_id, incarnation, seq, source, quantity, value, unit, time, clock FROM readings`)
	if err != nil {
		r.tb.Fatal(err)
	}
	out := map[string]wire.ReadingBody{}
	var gw, inc string
	var rb wire.ReadingBody
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&gw, &inc, &rb.Seq, &rb.Source, &rb.Quantity, &rb.Value, &rb.Unit, &at, &rb.Clock}, func() error {
		rb.Time = at.UTC().Format(time.RFC3339Nano)
		out[wire.ReadingID(gw, inc, rb.Seq)] = rb
		return nil
	})
	if err != nil {
		r.tb.Fatal(err)
	}
	return out
}

// recorder notes the status a proxied answer carried.
type recorder struct {
	http.ResponseWriter
	status int
	body   string
}

// WriteHeader notes status and passes it on.
func (rec *recorder) WriteHeader(status int) {
	rec.status = status
	rec.ResponseWriter.WriteHeader(status)
}
