package receiver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"fieldgate/uplink/wire"
)

// Outcome is what storing a batch did.
type Outcome int

// What storing a batch can do.
const (
	// Stored: the batch is new and committed.
	Stored Outcome = iota
	// Replay: the same batch was stored before; nothing changed.
	Replay
	// Conflict: the same bounds were stored before with other readings, or
	// a reading was stored before under the same identity with other
	// content; nothing of the batch is stored.
	Conflict
)

// Result is the outcome of StoreBatch.
type Result struct {
	Outcome Outcome
	// New is how many readings were inserted; the rest of a stored batch
	// were there already (an overlapping batch sent them).
	New int
}

// An InvalidError is a batch the database cannot hold as it is (the
// contract's 422): a seq beyond 2^63-1, a bad time or clock, text with NUL.
type InvalidError struct{ Msg string }

// Error says what cannot be stored.
func (e *InvalidError) Error() string { return e.Msg }

// maxText is the longest source, quantity or unit stored.
const maxText = 256

// columns are a batch's readings as arrays, one per column, for unnest.
type columns struct {
	seq                           []int64
	source, quantity, unit, clock []string
	value                         []float64
	time                          []time.Time
}

// toColumns validates b's readings and turns them into columns.
func toColumns(b wire.BatchBody) (columns, error) {
	n := len(b.Readings)
	if b.LastSeq > math.MaxInt64 {
		return columns{}, &InvalidError{fmt.Sprintf("last_seq %d is beyond 2^63-1", b.LastSeq)}
	}
	c := columns{make([]int64, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]float64, n), make([]time.Time, n)}
	for i, r := range b.Readings {
		t, err := time.Parse(time.RFC3339Nano, r.Time)
		switch {
		case err != nil:
			return c, &InvalidError{fmt.Sprintf("reading %d: time %q is not RFC 3339", r.Seq, r.Time)}
		case r.Clock != "synced" && r.Clock != "unsynced":
			return c, &InvalidError{fmt.Sprintf("reading %d: clock %q is neither synced nor unsynced", r.Seq, r.Clock)}
		case !storable(r.Source) || !storable(r.Quantity) || !storable(r.Unit):
			return c, &InvalidError{fmt.Sprintf("reading %d: source, quantity and unit must be UTF-8 without NUL, at most %d bytes", r.Seq, maxText)}
		case r.Source == "" || r.Quantity == "":
			return c, &InvalidError{fmt.Sprintf("reading %d: source and quantity must not be empty", r.Seq)}
		}
		c.seq[i], c.source[i], c.quantity[i], c.unit[i], c.clock[i], c.value[i], c.time[i] =
			int64(r.Seq), r.Source, r.Quantity, r.Unit, r.Clock, r.Value, t
	}
	return c, nil
}

func storable(s string) bool {
	return len(s) <= maxText && utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// digest identifies a batch's content: the SHA-256 of its JSON body,
// decompressed. A gateway encodes a batch deterministically (fixed field
// order, shortest floats), so every retry has the same digest whatever
// compression carried it.
func digest(js []byte) []byte {
	h := sha256.Sum256(js)
	return h[:]
}

// storeSQL records the batch and inserts its readings in one statement, so
// both commit together. Readings already stored under the same identity
// (gateway, incarnation, seq) are not inserted again; nothing is inserted
// when one of them has other content (a conflict: a reading is never
// silently replaced or dropped). readings is partitioned by received, so
// no unique index can hold the identity: the stored seqs are looked up,
// and the caller holds the gateway's lock (gatewayLock) so that no other
// batch of the same identities commits in between. A reading is stored
// only with a batch that holds its seq, so a batch that starts above the
// highest last_seq stored (the usual next batch) looks in no partition;
// any other looks in each (one index range scan per partition). It returns how many batch rows and
// readings were inserted, and whether a reading differs.
const storeSQL = `
WITH incoming AS (
	SELECT * FROM unnest($7::bigint[], $8::text[], $9::text[], $10::float8[], $11::text[], $12::timestamptz[], $13::text[])
		AS r(seq, source, quantity, value, unit, time, clock)
), stored AS (
	SELECT seq, source, quantity, value, unit, time, clock FROM readings
	WHERE gateway_id = $1 AND incarnation = $2 AND seq BETWEEN $3 AND $4
		AND $3 <= (SELECT max(last_seq) FROM batches WHERE gateway_id = $1 AND incarnation = $2)
), differ AS (
	SELECT 1 FROM incoming i JOIN stored s USING (seq)
	WHERE (s.source, s.quantity, s.value, s.unit, s.time, s.clock) IS DISTINCT FROM (i.source, i.quantity, i.value, i.unit, i.time, i.clock)
	LIMIT 1
), batch AS (
	INSERT INTO batches (gateway_id, incarnation, first_seq, last_seq, readings, digest)
	SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS (SELECT 1 FROM differ)
	ON CONFLICT (gateway_id, incarnation, first_seq, last_seq) DO NOTHING
	RETURNING 1
), added AS (
	INSERT INTO readings (gateway_id, incarnation, seq, source, quantity, value, unit, time, clock)
	SELECT $1, $2, i.* FROM incoming i
	WHERE EXISTS (SELECT 1 FROM batch) AND NOT EXISTS (SELECT 1 FROM stored s WHERE s.seq = i.seq)
	RETURNING 1
)
SELECT (SELECT count(*) FROM batch), (SELECT count(*) FROM added), (SELECT count(*) FROM differ)`

// gatewayLock is the key of the advisory lock under which a gateway's
// batches are stored, one store incarnation at a time.
func gatewayLock(gateway, incarnation string) string { return gateway + "\n" + incarnation }

// StoreBatch stores batch b, decoded from js (its JSON body), which must
// have passed b.Check. It returns once the batch is committed, or found
// stored before (Replay), or found in conflict with what is stored: its
// bounds with another body, or one of its readings with other content.
func (d *DB) StoreBatch(ctx context.Context, b wire.BatchBody, js []byte) (Result, error) {
	c, err := toColumns(b)
	if err != nil {
		return Result{}, err
	}
	sum := digest(js)
	var res Result
	err = d.inTxLocked(ctx, gatewayLock(b.Gateway, b.Incarnation), func(tx pgx.Tx) error {
		var batches, added, differ int
		err := tx.QueryRow(ctx, storeSQL, b.Gateway, b.Incarnation, int64(b.FirstSeq), int64(b.LastSeq), len(b.Readings), sum,
			c.seq, c.source, c.quantity, c.value, c.unit, c.time, c.clock).Scan(&batches, &added, &differ)
		switch {
		case err != nil:
			return err
		case batches == 1:
			res = Result{Outcome: Stored, New: added}
			return nil
		case differ > 0:
			res = Result{Outcome: Conflict}
			return nil
		}
		var stored []byte
		err = tx.QueryRow(ctx, "SELECT digest FROM batches WHERE gateway_id = $1 AND incarnation = $2 AND first_seq = $3 AND last_seq = $4",
			b.Gateway, b.Incarnation, int64(b.FirstSeq), int64(b.LastSeq)).Scan(&stored)
		res = Result{Outcome: Replay}
		if err == nil && !bytes.Equal(stored, sum) {
			res = Result{Outcome: Conflict}
		}
		return err
	})
	if err != nil {
		return Result{}, err
	}
	return res, nil
}
