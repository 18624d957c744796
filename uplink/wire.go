package uplink

import (
	"fmt"
	"time"

	"fieldgate/store"
	"fieldgate/uplink/wire"
)

// encodeBatch returns the gzip'd JSON body for readings rs, which must be
// the batch's readings in seq order. The encoding is deterministic: the same
// readings always give the same bytes (fixed field order, shortest float
// form, RFC 3339 UTC times, gzip without name or timestamp).
func encodeBatch(gateway, incarnation string, first, last uint64, rs []store.Reading) (raw int, body []byte, err error) {
	b := wire.BatchBody{Gateway: gateway, Incarnation: incarnation, FirstSeq: first, LastSeq: last, Readings: make([]wire.ReadingBody, len(rs))}
	for i, r := range rs {
		b.Readings[i] = wire.ReadingBody{
			Seq: r.Seq, Source: r.Source, Quantity: r.Quantity, Value: r.Value, Unit: r.Unit,
			Time: r.Time.UTC().Format(time.RFC3339Nano), Clock: r.Clock.String(),
		}
	}
	js, gz, err := b.Encode()
	if err != nil {
		return 0, nil, fmt.Errorf("uplink: %w", err)
	}
	return len(js), gz, nil
}

// readingJSONSize estimates a reading's encoded size, to cut batches at
// MaxBytes before encoding them.
func readingJSONSize(r *store.Reading) int {
	return 110 + len(r.Source) + len(r.Quantity) + len(r.Unit)
}
