// Package httpapi is the gateway's local REST API for technicians on the LAN
// and their scripts: status, sources and their readings, devices, exports,
// dead letters, users and tokens, a live WebSocket stream, health probes and
// Prometheus metrics, all under one set of conventions (docs/api.md): JSON
// only, one error shape, ETags, Link pagination, RFC 3339 UTC times, and an
// OpenAPI 3 document (openapi.yaml, served as JSON) that the
// tests validate every response against.
//
// The package depends on store for data and declares small interfaces for
// the broker, the sensors and the uplink (Deps), which cmd/fieldgate adapts.
package httpapi
