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
// A segment starts with a 40-byte header:
//
//	0   8  magic "FGWAL\x00\x00\x02"
//	8   8  segment number, big-endian
//	16  8  epoch: random, drawn each time a file is prepared as a segment
//	24  8  base: the last seq the log held when the writing process began
//	32  4  CRC-32C of bytes 0–31
//	36  4  zero
//
// followed by frames, back to back:
//
//	0   4  checksum: CRC-32C of bytes 4 to the end of the payload, XOR the
//	       CRC-32C of the segment's number and epoch (its salt)
//	4   4  payload length
//	8   8  first sequence number the record holds
//	16  8  last sequence number the record holds
//	24  8  durable: the highest seq a completed sync covered when the frame
//	       was written
//	32  n  payload
//
// Within a segment each frame's first seq is the previous frame's last seq
// plus one. A frame with an empty payload is a mark: it ends its segment,
// and its seqs, if not zero, were voided by Recover. Version 1 segments
// (unsalted, 24-byte frame heads), left by older fieldgates, are replayed;
// nothing new is written in that format.
//
// # What each fault costs
//
// A record's checksum is salted with its segment's number and epoch, so a
// frame left in a recycled file by its previous use, or by another segment,
// never checks out: stale bytes are never read back as records. Every
// process writes in segments of its own, never after bytes it did not
// write.
//
//   - A process that dies (SIGKILL, a panic): nothing acknowledged is lost.
//     Its written but unsynced records are still in the page cache; replay
//     syncs each segment before it reads it, so what it hands out is on the
//     device and a later power cut cannot take it back.
//   - A power cut: the records of the last unsynced writes may be lost,
//     whole or torn, in any subset of their pages. None was acknowledged.
//     Replay reads every valid frame, also past a torn one, and reports the
//     tear as Damage of kind "torn". A frame of such a write may survive and
//     be read back although never acknowledged (as after a crash between a
//     sync and its acknowledgement); its sender resends it.
//   - A failed write or fdatasync (an undervoltage, a failing card): the
//     kernel may have dropped the pages while its cache still shows them.
//     The log is broken (ErrBroken) until Recover, which drops the cache,
//     checks that what the last good sync covered reads back from the
//     device, writes a mark voiding the failed records (never acknowledged)
//     and goes on in a fresh segment. Nothing acknowledged is lost.
//   - A bit flipped on the device after its sync (bit rot): the records in
//     the damaged frame are lost. Replay reads every valid frame after it,
//     reports the damage as "corrupt" with the seqs lost where a later frame
//     proves they had been synced (else it is indistinguishable from a tear
//     and reported as "torn"), and the file is quarantined ("quarantine-N.wal")
//     instead of recycled when it is released. An unreadable segment header,
//     or a record that checks out but does not decode (ErrBadRecord), is
//     reported the same way.
//
// Replay reads only the device: each segment is synced and then dropped
// from the page cache (FADV_DONTNEED) before it is read.
//
// # Concurrency
//
// One goroutine (the store's committer) owns Append, Flush and Recover;
// Sync may run concurrently from another goroutine, so the next group of
// records is written while the previous one syncs. Release may be called
// from any goroutine.
//
// # Testing
//
// Every file operation goes through [FS]; storetest.CrashFS implements it in
// memory, with power cuts that keep any subset of the unsynced pages and
// tear some, process deaths, failed syncs that drop pages, and flipped bits.
package wal
