// Package sensors reads the gateway's local sensors and feeds their readings
// to the store through its queued path.
//
// A [Sensor] takes one measurement of one or more quantities when asked. The
// [Poller] asks each sensor on its own interval and hands the readings to a
// [Sink] (the store's Enqueue), so a poll never waits for an fsync. A sensor
// that fails is logged and retried on its next tick; it never stops the
// gateway.
//
// [Sim] is a simulated temperature/humidity sensor with a realistic daily
// cycle, used when the machine has no I2C bus so that the gateway shows live
// data on any laptop.
package sensors
