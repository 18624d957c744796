// Package config reads a YAML configuration file onto a Go struct whose
// fields carry yaml tags, as technicians need it read: every unknown key
// named with its file:line and the nearest known one, every value that
// does not decode named by its key, FIELDGATE_* environment variables that
// override single keys, and all problems listed at once.
//
// Components declare their own section as a struct (broker.Config,
// store.Config, …) with its defaults and ranges; this package knows only
// three extra tags on their fields:
//
//	config:"size"   an integer of bytes, written 512MiB, 1.5GiB, 64MB or 4096
//	config:"file"   a path that must exist when set
//	config:"secret" a string Render prints as [redacted]
//
// Durations are time.Duration fields, written 500ms, 10s, 5m or 720h.
package config
