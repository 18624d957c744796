// Package uplink replays the store's buffered readings to the cloud backend
// as idempotent HTTP PUTs, as docs/cloud-api.yaml describes:
//
//	PUT {url}/v1/gateways/{gateway_id}/batches/{first_seq}-{last_seq}
//	Authorization: Bearer {token}
//	Idempotency-Key: {gateway_id}:{first_seq}-{last_seq}
//	Content-Type: application/json
//	Content-Encoding: gzip
//
// A batch's bounds are recorded in the store before its first send, and its
// body is a deterministic function of the readings in those bounds, so a
// resend after a timeout or a crash is byte-for-byte the same request: the
// cloud deduplicates by Idempotency-Key (or by reading id, gateway:seq) and
// receives every reading exactly once in effect.
//
// Responses: 2xx acknowledges the batch (the store's cursor moves over the
// contiguous acknowledged prefix); 408, 429, 5xx and network errors are
// retried with exponential backoff and full jitter, never sooner than
// Retry-After, with a single probe request at a time while failing; 401 and
// 403 pause sending until a probe succeeds (a token file is re-read for each
// request, so fixing it needs no restart); 413 splits the batch; any other
// 4xx moves the batch to the store's dead letters and sending continues.
//
// Live first: when the sender starts with a backlog, readings that arrive
// afterwards are sent as they come, while the backlog drains behind them at
// a configurable rate.
package uplink
