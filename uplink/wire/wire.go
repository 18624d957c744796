// Package wire is the uplink's format on the wire, shared by the sender and
// by the reference receiver: the batch body, its path and its idempotency
// key, as docs/cloud-api.yaml specifies.
package wire

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
)

// BatchBody is the JSON body of a batch PUT.
type BatchBody struct {
	Gateway string `json:"gateway"`
	// Incarnation names the gateway's store: a random id made when the
	// store was created. A gateway whose store starts over (a new card, a
	// re-flash) keeps its id and starts its seqs at 1 again under a new
	// incarnation, so its readings never collide with the old store's.
	// Empty for a store made before incarnations (the field is then left
	// out, and the body is what it always was).
	Incarnation string        `json:"incarnation,omitempty"`
	FirstSeq    uint64        `json:"first_seq"`
	LastSeq     uint64        `json:"last_seq"`
	Readings    []ReadingBody `json:"readings"`
}

// ReadingBody is one reading on the wire. Its cloud-wide identity is
// (gateway, incarnation, seq): see ReadingID.
type ReadingBody struct {
	Seq      uint64  `json:"seq"`
	Source   string  `json:"source"`
	Quantity string  `json:"quantity"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Time     string  `json:"time"`
	Clock    string  `json:"clock"`
}

// BatchPath is a batch's path under the uplink URL.
func BatchPath(gateway string, first, last uint64) string {
	return fmt.Sprintf("/v1/gateways/%s/batches/%d-%d", gateway, first, last)
}

// IdempotencyKey is a batch's key: "{gateway}:{first}-{last}", or
// "{gateway}:{incarnation}:{first}-{last}" for a store with an incarnation.
func IdempotencyKey(gateway, incarnation string, first, last uint64) string {
	if incarnation == "" {
		return fmt.Sprintf("%s:%d-%d", gateway, first, last)
	}
	return fmt.Sprintf("%s:%s:%d-%d", gateway, incarnation, first, last)
}

// ReadingID is a reading's cloud-wide id: "{gateway}:{seq}", or
// "{gateway}:{incarnation}:{seq}" for a store with an incarnation.
func ReadingID(gateway, incarnation string, seq uint64) string {
	if incarnation == "" {
		return fmt.Sprintf("%s:%d", gateway, seq)
	}
	return fmt.Sprintf("%s:%s:%d", gateway, incarnation, seq)
}

// ValidIncarnation reports whether inc is an incarnation (16 to 32
// lowercase hex digits) or none.
func ValidIncarnation(inc string) bool {
	if inc == "" {
		return true
	}
	if len(inc) < 16 || len(inc) > 32 {
		return false
	}
	for _, c := range inc {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Encode returns the batch's JSON and its gzip'd form, the body of its PUT.
// The encoding is deterministic: the same batch always gives the same
// bytes (fixed field order, shortest float form, gzip without name or
// timestamp).
func (b BatchBody) Encode() (js, gz []byte, err error) {
	if js, err = json.Marshal(b); err != nil {
		return nil, nil, fmt.Errorf("encode batch %d-%d: %w", b.FirstSeq, b.LastSeq, err)
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, nil, err
	}
	if _, err := zw.Write(js); err != nil {
		return nil, nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, nil, err
	}
	return js, buf.Bytes(), nil
}
