// Package wal is fieldgate's write-ahead log: the durable half of the
// store's ingest path. A reading is acknowledged once the log record that
// holds it is fdatasync'd; the store moves records into bbolt later, in large
// checkpoint transactions, and then releases the segments that held them.
//
// # Layout
//
// The log is a directory of segment files named by a hex segment number
// ("0000000000000007.wal"). Every segment has the same size and is
// preallocated: a new one is zero-filled and synced before it is used, a
// released one is renamed and reused. Writes therefore always overwrite
// blocks the file system has already allocated and initialised, and an
// fdatasync sends only the data blocks written since the last one — no
// file-size or extent metadata, so no journal commit per sync.
//
// A segment starts with a 32-byte header:
//
//	0   8  magic "FGWAL\x00\x00\x01"
//	8   8  segment number, big-endian
//	16  4  CRC-32C of bytes 0–15
//	20  12 zero
//
// followed by frames, back to back:
//
//	0   4  CRC-32C of bytes 4 to the end of the payload
//	4   4  payload length
//	8   8  first sequence number the record holds
//	16  8  last sequence number the record holds
//	24  n  payload
//
// Within a segment each frame's first seq is the previous frame's last seq
// plus one. Replay reads each segment from its first frame while frames are
// valid (CRC, length, sequence continuity) and stops at the first that is
// not: zeros (never written), a frame torn by a crash, or a stale frame left
// by the segment's previous use, whose sequence numbers are older. A torn
// tail is counted and logged, then sealed with an empty frame (length 0,
// sequence numbers 0, a valid CRC) so it is reported once; writing resumes in
// a fresh segment, so a torn region is never overwritten in place.
//
// # Concurrency
//
// One goroutine (the store's committer) owns Append and Flush; Sync may run
// concurrently from another goroutine, so the next group of records is
// written while the previous one syncs. Release may be called from any
// goroutine.
//
// # Testing
//
// Every file operation goes through [FS]; storetest.CrashFS implements it in
// memory with a simulated power cut that keeps only what was synced and
// tears the rest at an arbitrary byte.
package wal
