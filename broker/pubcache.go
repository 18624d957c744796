package broker

import (
	"slices"
	"strings"

	"fieldgate/store"
)

// publishCache holds what one connection's read goroutine learned from its
// earlier publishes: the topic the ACL last allowed, parsed; the device's
// rate buckets; quantities the device may store. A node sends the same
// topic and quantity publish after publish, so each one then costs neither
// a parse nor a shared lock. Only the read goroutine uses it.
type publishCache struct {
	pubTopic string // the last topic the ACL allowed this connection to publish to
	parsed   Topic  // pubTopic, parsed
	limit    *devLimit
	known    []string // quantities the device may store (some of them)
}

// knownQuantities bounds publishCache.known: a SenML node with more
// quantities has the rest checked by quantities.admit, as without it.
const knownQuantities = 16

// allowed reports whether the ACL allowed topic for this connection's
// last publish to it. The decision depends on the topic and the
// connection's identity alone, so it holds for the next one.
func (c *publishCache) allowed(topic string) bool {
	return topic != "" && topic == c.pubTopic
}

// allow notes that the ACL allowed topic.
func (c *publishCache) allow(topic string) {
	c.pubTopic = strings.Clone(topic) // mochi's topic names share the packet's buffer
	c.parsed = ParseTopic(c.pubTopic)
}

// topic is ParseTopic(name), from the cache when it is the allowed topic.
func (c *publishCache) topic(name string) Topic {
	if name != "" && name == c.pubTopic {
		return c.parsed
	}
	return ParseTopic(name)
}

// admit is q.admit, skipped when every reading is of a quantity this
// connection saw admitted before: a device's set of quantities only grows.
func (c *publishCache) admit(q *quantities, device string, rs []store.Reading) ([]store.Reading, error) {
	if c.knowsAll(rs) {
		return rs, nil
	}
	rs, err := q.admit(device, rs)
	for _, r := range rs {
		if len(c.known) < knownQuantities && !slices.Contains(c.known, r.Quantity) {
			c.known = append(c.known, strings.Clone(r.Quantity))
		}
	}
	return rs, err
}

func (c *publishCache) knowsAll(rs []store.Reading) bool {
	for _, r := range rs {
		if !slices.Contains(c.known, r.Quantity) {
			return false
		}
	}
	return true
}
