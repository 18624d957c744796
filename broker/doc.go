// Package broker is fieldgate's embedded MQTT broker: mochi-mqtt behind a
// guard that validates every packet before mochi sees it, with per-device
// credentials, ACLs, login throttling and rate limits, and a hook that
// decodes each publish (plain numbers, SenML, ESPHome, Tasmota) into
// readings. A QoS 1/2 acknowledgement goes out only once its readings are
// durable in the store; a connection keeps reading while its QoS 1 readings
// sync, and their PUBACKs follow in order. What the broker refuses it
// refuses in a way each protocol version understands, counts and logs once.
package broker
