// Package store keeps fieldgate's readings, devices and upload state durably:
// a write-ahead log in front of one bbolt file.
//
// It is the heart of the gateway: every reading from a local sensor or an MQTT
// node goes through its group committer, which writes everything queued to the
// log in one write, fdatasyncs it, and only then tells the callers waiting on
// it; checkpoints later move the readings (held meanwhile in memory, the head)
// into bbolt. A caller of [Store.Append] therefore knows its readings are on
// disk when it returns; [Store.AppendThen] says so through a callback instead,
// so that its caller may go on meanwhile (the broker's QoS 1 PUBACKs);
// [Store.Enqueue] is the cheaper path for data whose loss in a power cut is
// tolerated (sensor polls, MQTT QoS 0), committed within one commit interval.
//
// Layout of the file (all integer keys big-endian so that byte order is
// numeric order):
//
//	meta        gateway id, schema version, last assigned seq, outbox cursor, next series id
//	readings    seq → encoded reading
//	series      source \x00 quantity → series id; and series id → source, quantity
//	index       series id | time | seq → value  (time-range queries cost O(result))
//	devices     device id → JSON device record
//	outbox      first seq → batch state (in flight, acknowledged)
//	deadletters first seq → dead-lettered batch
//	counters    name → count (readings dropped, by reason)
//
// A reading is never deleted before the cloud acknowledged it, except by the
// explicit full-store policy ([FullDropOldest]), which counts every reading it
// drops.
package store
