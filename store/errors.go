package store

import "errors"

// Errors returned by the store. Callers compare with errors.Is.
var (
	// ErrClosed is returned by writes after Close has begun.
	ErrClosed = errors.New("store: closed")

	// ErrFailed is wrapped by the errors of every call once the store has
	// failed in a way only a restart repairs: a bbolt file that could not
	// be reopened after a failed commit or a compaction, or a log whose
	// synced records no longer read back. The restart's replay then says
	// what is damaged. Failed's channel is closed at the same time.
	ErrFailed = errors.New("store: failed; restart to recover from what is on disk")

	// ErrFull is returned when the store reached its hard size cap and the
	// full-store policy is reject_new.
	ErrFull = errors.New("store: full")

	// ErrNotFound is returned when a device, batch or dead letter does not exist.
	ErrNotFound = errors.New("store: not found")

	// ErrInUse is returned by Open when another process holds the file lock.
	ErrInUse = errors.New("store: file is in use by another process")

	// ErrNotAStore is returned by Open when the file exists but is not a
	// fieldgate store (another bbolt database, or not bbolt at all).
	ErrNotAStore = errors.New("store: not a fieldgate store")

	// ErrSchemaTooNew is returned by Open when the file was written by a newer
	// fieldgate whose schema this binary does not know.
	ErrSchemaTooNew = errors.New("store: schema is newer than this fieldgate")

	// ErrGatewayMismatch is returned by Open when the configured gateway id
	// differs from the one the store was created with.
	ErrGatewayMismatch = errors.New("store: gateway id mismatch")

	// ErrLogBroken is wrapped by the errors of writes (and of Ping) while a
	// failed write or fdatasync leaves the write-ahead log's tail unknown,
	// until the committer has recovered it from what is on disk. Unlike a
	// full disk, it is a failure of the device: health checks fail on it.
	ErrLogBroken = errors.New("store: the write-ahead log failed a write or sync")

	// ErrLastAdmin is returned when a change would leave no user with the
	// admin role: nobody could manage the accounts any more.
	ErrLastAdmin = errors.New("store: the last admin must stay an admin")

	// ErrInvalidReading is returned when a reading lacks a source, quantity or
	// time, or its value is not a finite number.
	ErrInvalidReading = errors.New("store: invalid reading")
)

// Unhealthy reports whether err, from Ping, means the store cannot be
// trusted as it runs: the log is being recovered after a failed write or
// sync (ErrLogBroken), or the store failed (ErrFailed) or was closed. A
// full disk is not unhealthy: room frees by itself, and a restart would
// lose the readings the store carries meanwhile.
func Unhealthy(err error) bool {
	return errors.Is(err, ErrLogBroken) || errors.Is(err, ErrFailed) || errors.Is(err, ErrClosed)
}
