package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"fieldgate/cmd/fieldgate-cloud/receiver/pgtest"
	"fieldgate/uplink/wire"
)

func TestStoresABatchOnceAndAnswersItsReplaysAlike(t *testing.T) {
	r := newReceiver(t, Options{})
	b := batch("gw-a", 1, 21.5, 21.75, -3)
	first := r.put(r.tokens["gw-a"], b, nil)
	if first.status != http.StatusOK || strings.TrimSpace(first.body) != `{"accepted":3}` {
		t.Fatalf("first PUT: %+v", first)
	}
	for range 3 {
		if again := r.put(r.tokens["gw-a"], b, nil); again != first {
			t.Fatalf("replay answered %+v, first answer %+v", again, first)
		}
	}
	if n := r.count("SELECT count(*) FROM readings"); n != 3 {
		t.Fatalf("%d readings stored, want 3", n)
	}
	var value float64
	var tm time.Time
	var source, quantity, unit, clock string
	err := r.db.pool.QueryRow(t.Context(), "SELECT source, quantity, value, unit, time, clock FROM readings WHERE gateway_id = 'gw-a' AND seq = 2").
		Scan(&source, &quantity, &value, &unit, &tm, &clock)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 11, 22, 10, 0, 1, 500_000_000, time.UTC)
	if source != "esp32-a" || quantity != "temperature" || value != 21.75 || unit != "Cel" || !tm.Equal(want) || clock != "synced" {
		t.Errorf("reading 2 stored as %s %s %v %s %v %s", source, quantity, value, unit, tm, clock)
	}
	if got := r.metric(`fieldgate_cloud_batches_total{outcome="replay"}`); got != "3" {
		t.Errorf("replays counted: %s, want 3", got)
	}
	if got := r.metric("fieldgate_cloud_readings_stored_total"); got != "3" {
		t.Errorf("readings counted: %s, want 3", got)
	}
}

func TestSameBoundsWithOtherReadingsIsAConflict(t *testing.T) {
	r := newReceiver(t, Options{})
	if a := r.put(r.tokens["gw-a"], batch("gw-a", 1, 1, 2), nil); a.status != http.StatusOK {
		t.Fatalf("first: %+v", a)
	}
	a := r.put(r.tokens["gw-a"], batch("gw-a", 1, 1, 99), nil)
	if a.status != http.StatusConflict || !strings.Contains(a.body, `"code":409`) {
		t.Fatalf("other readings under the same bounds: %+v, want 409", a)
	}
	if n := r.count("SELECT count(*) FROM readings WHERE value = 99"); n != 0 {
		t.Error("the second body's readings were stored")
	}
	if got := r.metric(`fieldgate_cloud_batches_total{outcome="conflict"}`); got != "1" {
		t.Errorf("conflicts counted: %s, want 1", got)
	}
}

func TestOverlappingBatchesStoreEachReadingOnce(t *testing.T) {
	r := newReceiver(t, Options{})
	for _, b := range []wire.BatchBody{batch("gw-a", 1, 1, 2, 3), batch("gw-a", 2, 2, 3, 4, 5), batch("gw-b", 1, 7)} {
		if a := r.put(r.tokens[b.Gateway], b, nil); a.status != http.StatusOK {
			t.Fatalf("%s %d-%d: %+v", b.Gateway, b.FirstSeq, b.LastSeq, a)
		}
	}
	if n := r.count("SELECT count(*) FROM readings WHERE gateway_id = 'gw-a'"); n != 5 {
		t.Errorf("gw-a: %d readings, want 5", n)
	}
	if n := r.count("SELECT count(*) FROM readings WHERE gateway_id = 'gw-b'"); n != 1 {
		t.Errorf("gw-b: %d readings, want 1 (same seq as gw-a's, another gateway)", n)
	}
	if got := r.metric("fieldgate_cloud_readings_duplicate_total"); got != "2" {
		t.Errorf("duplicates counted: %s, want 2", got)
	}
}

func TestTokens(t *testing.T) {
	r := newReceiver(t, Options{})
	b := batch("gw-a", 1, 1)
	if a := r.put("", b, nil); a.status != http.StatusUnauthorized {
		t.Errorf("no token: %+v", a)
	}
	if a := r.put("fgc_guess", b, nil); a.status != http.StatusUnauthorized {
		t.Errorf("unknown token: %+v", a)
	}
	if a := r.put(r.tokens["gw-b"], b, nil); a.status != http.StatusForbidden {
		t.Errorf("another gateway's token: %+v", a)
	}
	old := r.tokens["gw-a"]
	rotated, err := r.db.RotateGateway(t.Context(), "gw-a")
	if err != nil {
		t.Fatal(err)
	}
	if a := r.put(old, b, nil); a.status != http.StatusUnauthorized {
		t.Errorf("rotated-out token: %+v", a)
	}
	if a := r.put(rotated, b, nil); a.status != http.StatusOK {
		t.Errorf("new token: %+v", a)
	}
	gws, err := r.db.Gateways(t.Context())
	if err != nil || len(gws) != 2 || gws[0].ID != "gw-a" || gws[0].LastSeen == nil || gws[1].LastSeen != nil {
		t.Errorf("gateways: %+v, %v (gw-a seen, gw-b not)", gws, err)
	}
	if err := r.db.RemoveGateway(t.Context(), "gw-a"); err != nil {
		t.Fatal(err)
	}
	if a := r.put(rotated, b, nil); a.status != http.StatusUnauthorized {
		t.Errorf("removed gateway's token: %+v", a)
	}
	if n := r.count("SELECT count(*) FROM readings WHERE gateway_id = 'gw-a'"); n != 1 {
		t.Errorf("removing the gateway left %d readings, want its 1", n)
	}
	if _, err := r.db.AddGateway(t.Context(), "gw-b", ""); err == nil {
		t.Error("a second gw-b was added")
	}
	if _, err := r.db.AddGateway(t.Context(), "no spaces", ""); err == nil {
		t.Error("an id outside the contract's pattern was added")
	}
}

func TestRefusesWhatItCannotStore(t *testing.T) {
	var logged bytes.Buffer
	r := newReceiver(t, Options{MaxReadings: 3, MaxBody: 4096, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	tok := r.tokens["gw-a"]
	big := batch("gw-a", 1, make([]float64, 400)...)
	for i := range big.Readings {
		big.Readings[i].Source = fmt.Sprintf("noise-%d-%x", i, i*7919) // hard to compress
	}
	bomb := batch("gw-a", 1, 1)
	bomb.Readings[0].Source = strings.Repeat("a", 5000) // compresses to little, inflates past 3 × 1 KiB
	nul := batch("gw-a", 1, 1)
	nul.Readings[0].Source = "a\x00b"
	badClock := batch("gw-a", 1, 1)
	badClock.Readings[0].Clock = "maybe"
	badTime := batch("gw-a", 1, 1)
	badTime.Readings[0].Time = "yesterday"
	huge := wire.BatchBody{Gateway: "gw-a", FirstSeq: 1 << 63, LastSeq: 1 << 63,
		Readings: []wire.ReadingBody{{Seq: 1 << 63, Source: "s", Quantity: "q", Unit: "u", Time: "2026-01-01T00:00:00Z", Clock: "synced"}}}
	for _, tc := range []struct {
		name string
		b    wire.BatchBody
		mod  func(*http.Request)
		want int
	}{
		{"too many readings", batch("gw-a", 1, 1, 2, 3, 4), nil, http.StatusRequestEntityTooLarge},
		{"too many bytes", big, nil, http.StatusRequestEntityTooLarge},
		{"inflates too far", bomb, nil, http.StatusRequestEntityTooLarge},
		{"not gzip", batch("gw-a", 1, 1), func(q *http.Request) { q.Header.Del("Content-Encoding") }, http.StatusUnsupportedMediaType},
		{"key differs from the URL", batch("gw-a", 1, 1), func(q *http.Request) { q.Header.Set("Idempotency-Key", "gw-a:1-9") }, http.StatusBadRequest},
		{"body differs from the URL", batch("gw-a", 1, 1), func(q *http.Request) { q.URL.Path = "/v1/gateways/gw-a/batches/1-2" }, http.StatusBadRequest},
		{"NUL in a source", nul, nil, http.StatusUnprocessableEntity},
		{"unknown clock", badClock, nil, http.StatusUnprocessableEntity},
		{"bad time", badTime, nil, http.StatusUnprocessableEntity},
		{"seq beyond bigint", huge, nil, http.StatusUnprocessableEntity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := put(t, r.srv, tok, tc.b, tc.mod)
			if a.status != tc.want || !strings.Contains(a.body, fmt.Sprintf(`"code":%d`, tc.want)) {
				t.Errorf("%+v, want %d in the contract's error shape", a, tc.want)
			}
		})
	}
	if n := r.count("SELECT count(*) FROM readings"); n != 0 {
		t.Errorf("%d readings of refused batches stored", n)
	}
	if !strings.Contains(logged.String(), "msg=refused status=413") {
		t.Errorf("no refusal was logged:\n%s", logged.String())
	}
}

// TestDatabaseDownIs503 stops PostgreSQL: every batch is refused with 503
// and Retry-After, /readyz says so, and after a restart the same batch is
// stored.
func TestDatabaseDownIs503(t *testing.T) {
	pg := pgtest.Start(t)
	r := newReceiverOn(t, pg.URL("postgres"), Options{RetryAfter: 3 * time.Second, Timeout: 2 * time.Second})
	b := batch("gw-a", 1, 1, 2)
	pg.Stop()
	a := r.put(r.tokens["gw-a"], b, nil)
	if a.status != http.StatusServiceUnavailable || a.retryAfter != "3" {
		t.Fatalf("database down: %+v, want 503 with Retry-After 3", a)
	}
	if w := get(r.srv, "/readyz"); w.Code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the database down: %d", w.Code)
	} else if b := w.Body.String(); strings.Contains(b, "127.0.0.1") || strings.Contains(b, "postgres") || strings.Contains(b, "user") {
		t.Errorf("/readyz tells anyone where the database is: %s", b)
	}
	if w := get(r.srv, "/healthz"); w.Code != http.StatusOK {
		t.Errorf("/healthz with the database down: %d (the process is fine)", w.Code)
	}
	if err := pg.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if a := r.put(r.tokens["gw-a"], b, nil); a.status != http.StatusOK {
		t.Fatalf("after restart: %+v", a)
	}
	if w := get(r.srv, "/readyz"); w.Code != http.StatusOK {
		t.Errorf("/readyz after restart: %d", w.Code)
	}
	if n := r.count("SELECT count(*) FROM readings"); n != 2 {
		t.Errorf("%d readings, want 2", n)
	}
}

// TestReplicasStoreOnce sends the same batches to two receivers on one
// database at once, as a gateway's retries through a load balancer would.
func TestReplicasStoreOnce(t *testing.T) {
	r := newReceiver(t, Options{})
	db2, err := Open(t.Context(), r.url, DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	replicas := []*Server{r.srv, NewServer(db2, Options{})}
	var wg sync.WaitGroup
	answers := make(chan answer, 200)
	for i := range 8 {
		wg.Go(func() {
			for n := range 25 {
				answers <- put(t, replicas[i%2], r.tokens["gw-a"], batch("gw-a", uint64(n*10+1), float64(n), 1, 2), nil)
			}
		})
	}
	wg.Wait()
	close(answers)
	for a := range answers {
		if a.status != http.StatusOK || strings.TrimSpace(a.body) != `{"accepted":3}` {
			t.Fatalf("answer %+v", a)
		}
	}
	if n := r.count("SELECT count(*) FROM readings"); n != 75 {
		t.Errorf("%d readings, want 75", n)
	}
	if n := r.count("SELECT count(*) FROM batches"); n != 25 {
		t.Errorf("%d batches, want 25", n)
	}
}

func get(h http.Handler, path string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return w
}

// TestSlowDatabaseIs503 holds a lock the batch's insert needs for longer
// than the server's timeout: the answer is 503, and nothing is stored.
func TestSlowDatabaseIs503(t *testing.T) {
	r := newReceiver(t, Options{Timeout: 300 * time.Millisecond, RetryAfter: 2 * time.Second})
	release := r.holdBatches()
	a := r.put(r.tokens["gw-a"], batch("gw-a", 1, 1), nil)
	release()
	if a.status != http.StatusServiceUnavailable || a.retryAfter != "2" {
		t.Fatalf("database slower than the timeout: %+v, want 503 with Retry-After 2", a)
	}
	if n := r.count("SELECT count(*) FROM readings"); n != 0 {
		t.Errorf("%d readings stored by a batch answered 503", n)
	}
	if a := r.put(r.tokens["gw-a"], batch("gw-a", 1, 1), nil); a.status != http.StatusOK {
		t.Errorf("once the lock is gone: %+v", a)
	}
}

// TestAStoreThatStartsOverKeepsItsReadings: a gateway whose store starts
// over (a new card, a re-flash) sends seqs from 1 again under its id. Its
// batches' bounds differ from the old ones, and the receiver answered 200
// while ON CONFLICT (gateway_id, seq) threw the new readings away. The
// store's incarnation is now part of a reading's identity; a reading that
// comes back under an existing identity with other content is a 409.
func TestAStoreThatStartsOverKeepsItsReadings(t *testing.T) {
	r := newReceiver(t, Options{})
	old := batch("gw-a", 1, 1, 2, 3) // a store made before incarnations
	if a := r.put(r.tokens["gw-a"], old, nil); a.status != http.StatusOK {
		t.Fatalf("the old store's batch: %+v", a)
	}
	for _, inc := range []string{"00000000000000aa", "00000000000000bb"} {
		b := batch("gw-a", 1, 7, 8) // other readings under seqs 1-2, other bounds
		b.Incarnation = inc
		if a := r.put(r.tokens["gw-a"], b, nil); a.status != http.StatusOK {
			t.Fatalf("a new store's batch (%s): %+v", inc, a)
		}
	}
	if n := r.count("SELECT count(*) FROM readings WHERE gateway_id = 'gw-a'"); n != 7 {
		t.Errorf("%d readings, want every store's: 3 + 2 + 2", n)
	}
	// The same store sends other content under a seq it sent before, in a
	// batch of other bounds: refused, not silently dropped.
	b := batch("gw-a", 2, 99)
	b.Incarnation = "00000000000000aa"
	if a := r.put(r.tokens["gw-a"], b, nil); a.status != http.StatusConflict {
		t.Fatalf("other content under an existing identity: %+v, want 409", a)
	}
	if n := r.count("SELECT count(*) FROM readings WHERE value = 99"); n != 0 {
		t.Error("the conflicting reading was stored")
	}
	if n := r.count("SELECT count(*) FROM batches WHERE first_seq = 2 AND last_seq = 2"); n != 0 {
		t.Error("the conflicting batch was recorded")
	}
}

// waitingOnLocks counts the database's backends waiting for a lock.
func (r *receiver) waitingOnLocks() int {
	r.t.Helper()
	return r.count("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")
}

// TestALockWaitEndsOnTheServer holds a lock every batch needs: each batch
// is answered 503 once PostgreSQL's lock timeout ended its wait (not the
// receiver's timeout, which is far longer), and no backend is left
// waiting for the lock, whatever happens to the receiver's connection.
func TestALockWaitEndsOnTheServer(t *testing.T) {
	var log bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &log}, nil))
	r := newReceiverWith(t, Options{Timeout: time.Minute, RetryAfter: time.Second, Logger: logger}, DBOptions{LockTimeout: 200 * time.Millisecond})
	r.holdBatches()
	for i := range 5 {
		if a := r.put(r.tokens["gw-a"], batch("gw-a", uint64(i+1), 1), nil); a.status != http.StatusServiceUnavailable {
			t.Fatalf("batch %d behind a lock: %+v, want 503", i, a)
		}
	}
	mu.Lock()
	logged := log.String()
	mu.Unlock()
	if n := strings.Count(logged, "lock timeout"); n != 5 {
		t.Errorf("%d of 5 batches ended by the lock timeout; log:\n%s", n, logged)
	}
	if n := r.waitingOnLocks(); n != 0 {
		t.Errorf("%d backends still wait for the lock after their requests were answered", n)
	}
}

// TestBatchesRunWithTheDatabaseOptions: every batch's transaction carries
// the statement and lock timeouts and synchronous_commit, set in the
// transaction (so a pooler in transaction mode keeps them).
func TestBatchesRunWithTheDatabaseOptions(t *testing.T) {
	r := newReceiverWith(t, Options{}, DBOptions{StatementTimeout: 7 * time.Second, LockTimeout: 3 * time.Second, SynchronousCommit: "remote_apply"})
	var st, lt, sc string
	err := r.db.inTx(t.Context(), func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), "SELECT current_setting('statement_timeout'), current_setting('lock_timeout'), current_setting('synchronous_commit')").Scan(&st, &lt, &sc)
	})
	if err != nil || st != "7s" || lt != "3s" || sc != "remote_apply" {
		t.Errorf("in a batch's transaction: statement_timeout %q, lock_timeout %q, synchronous_commit %q (%v)", st, lt, sc, err)
	}
	if _, err := Open(t.Context(), r.url, DBOptions{SynchronousCommit: "off"}); err == nil || !strings.Contains(err.Error(), "never off") {
		t.Errorf("synchronous_commit off: %v, want refused", err)
	}
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestACommitThatBeganFinishes: the gateway hangs up (its timeout) while
// the batch waits in the database; the batch is still stored, so the
// gateway's retry finds it stored instead of starting over.
func TestACommitThatBeganFinishes(t *testing.T) {
	r := newReceiver(t, Options{Timeout: 5 * time.Second})
	release := r.holdBatches()
	ctx, hangUp := context.WithCancel(t.Context())
	done := make(chan answer, 1)
	go func() {
		done <- put(t, r.srv, r.tokens["gw-a"], batch("gw-a", 1, 1, 2), func(req *http.Request) { *req = *req.WithContext(ctx) })
	}()
	waitUntil(t, func() bool { return r.waitingOnLocks() == 1 }) // the batch's statement waits
	hangUp()
	release()
	<-done
	if n := r.count("SELECT count(*) FROM readings"); n != 2 {
		t.Fatalf("%d readings stored after the gateway hung up, want the batch's 2", n)
	}
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
	}
}

// TestAReadOnlyNodeIsNotReady stands in for a failover that left the pool
// on a node that became a standby: its sessions are read-only. Batches are
// answered 503 and /readyz says so (before, /readyz said ready while every
// batch failed); the pool is reset, so once the address leads to a writable
// node again the receiver stores batches without a restart.
func TestAReadOnlyNodeIsNotReady(t *testing.T) {
	r := newReceiver(t, Options{RetryAfter: time.Second})
	dbName := ""
	if err := r.db.pool.QueryRow(t.Context(), "SELECT current_database()").Scan(&dbName); err != nil {
		t.Fatal(err)
	}
	alter := func(sql string) {
		t.Helper()
		if _, err := r.db.pool.Exec(t.Context(), fmt.Sprintf(sql, pgx.Identifier{dbName}.Sanitize())); err != nil {
			t.Fatal(err)
		}
	}
	alter("ALTER DATABASE %s SET default_transaction_read_only = on")
	r.db.pool.Reset() // the pool's next connections reach the "demoted" node
	if a := r.put(r.tokens["gw-a"], batch("gw-a", 1, 1), nil); a.status != http.StatusServiceUnavailable {
		t.Fatalf("batch on a read-only node: %+v, want 503", a)
	}
	if w := get(r.srv, "/readyz"); w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "read-only") {
		t.Errorf("/readyz on a read-only node: %d %s", w.Code, w.Body)
	}
	// The "new primary": the same address takes writes again. A session
	// of the old pool would still be read-only; the reset pool's are not.
	c, err := pgx.Connect(t.Context(), r.url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(t.Context())
	if _, err := c.Exec(t.Context(), fmt.Sprintf("BEGIN READ WRITE; ALTER DATABASE %s RESET default_transaction_read_only; COMMIT", pgx.Identifier{dbName}.Sanitize())); err != nil {
		t.Fatal(err)
	}
	if w := get(r.srv, "/readyz"); w.Code != http.StatusOK {
		t.Errorf("/readyz after the failover: %d %s", w.Code, w.Body)
	}
	if a := r.put(r.tokens["gw-a"], batch("gw-a", 1, 1), nil); a.status != http.StatusOK {
		t.Fatalf("batch after the failover: %+v", a)
	}
}

// putStatus sends a status PUT as token's gateway.
func putStatus(t *testing.T, h http.Handler, token string, b wire.StatusBody) int {
	t.Helper()
	js, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPut, wire.StatusPath(b.Gateway), bytes.NewReader(js))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code
}

// TestAGatewaysStatusIsKept: a gateway's status PUT is kept (the newest
// of several, whatever order they arrive in), listed with the gateway, and
// summed up on /metrics by state with bounded labels.
func TestAGatewaysStatusIsKept(t *testing.T) {
	r := newReceiver(t, Options{})
	now := time.Now().UTC()
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339Nano) }
	newer := wire.StatusBody{Gateway: "gw-a", At: at(0), Backlog: 1200, OldestUnsent: at(-2 * time.Minute), Clock: "synced", Health: "degraded", AutonomySeconds: 86400, Version: "1.2"}
	older := newer
	older.At, older.Backlog, older.Health = at(-time.Minute), 5, "ok"
	for _, c := range []struct {
		name  string
		token string
		body  wire.StatusBody
		want  int
	}{
		{"newer", r.tokens["gw-a"], newer, http.StatusNoContent},
		{"older, late", r.tokens["gw-a"], older, http.StatusNoContent},
		{"no token", "", newer, http.StatusUnauthorized},
		{"another gateway's token", r.tokens["gw-b"], newer, http.StatusForbidden},
		{"bad health", r.tokens["gw-a"], func() wire.StatusBody { b := newer; b.Health = "fine"; return b }(), http.StatusBadRequest},
	} {
		if got := putStatus(t, r.srv, c.token, c.body); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	if put := r.put(r.tokens["gw-a"], batch("gw-a", 1, 1), nil); put.status != http.StatusOK { // seen
		t.Fatal(put)
	}
	gws, err := r.db.Gateways(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	a := gws[0]
	if a.ID != "gw-a" || a.Status == nil || a.Status.Backlog != 1200 || a.Status.Health != "degraded" || a.State(now) != "current" {
		t.Fatalf("gw-a listed as %+v (status %+v)", a, a.Status)
	}
	if lag := a.Status.Lag(now.Add(20 * time.Minute)); lag.Round(time.Second) != 22*time.Minute {
		t.Errorf("lag %s twenty minutes later, want its oldest unsent reading's age", lag)
	}
	if s := a.State(now.Add(11 * time.Minute)); s != "behind" {
		t.Errorf("eleven minutes on, with nothing newer, gw-a is %s, want behind", s)
	}
	if s := gws[1].State(now); gws[1].ID != "gw-b" || s != "silent" {
		t.Errorf("gw-b, never seen: %s", s)
	}
	if v := r.metric(`fieldgate_cloud_gateways{state="silent"}`); v != "1" {
		t.Errorf("silent gateways %s, want 1", v)
	}
	if v := r.metric(`fieldgate_cloud_gateway_backlog_readings`); v != "1200" {
		t.Errorf("fleet backlog %s, want 1200", v)
	}
}
