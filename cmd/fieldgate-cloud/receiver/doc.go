// Package receiver is fieldgate's reference cloud receiver, the program
// cmd/fieldgate-cloud: the receiving side of the uplink contract
// (docs/cloud-api.yaml) storing readings in PostgreSQL through pgx.
//
// A batch is stored in one statement, so it is committed whole or not at
// all, and only a commit is answered 2xx. Readings are keyed by (gateway,
// incarnation, seq); a batch's bounds and the digest of its body are kept,
// so a replay is answered as the first time, and the same bounds with a
// different body, or a reading's identity with other content, are a 409. Gateways authenticate
// with their own bearer token, stored as a SHA-256 hash.
//
// The server keeps no state between requests: any number of replicas can
// share one database. docs/cloud.md describes the schema and the SQL
// features it relies on.
package receiver
