package broker

import (
	"slices"
	"strings"

	"fieldgate/store"
)

// publishCache holds what one connection's read goroutine learned from its
// earlier publishes: the topics the ACL allowed, parsed; the device's rate
// buckets; quantities the device may store. A node sends the same few
// topics and quantities publish after publish (an SHT3x node two, an
// ESPHome node one per sensor), so each one then costs neither a parse
// nor a shared lock. Only the read goroutine uses it.
type publishCache struct {
	topics []allowedTopic // topics the ACL allowed this connection to publish to
	limit  *devLimit
	known  []string // quantities the device may store (some of them)
}

// allowedTopic is a topic the ACL allowed, and its parse.
type allowedTopic struct {
	name   string
	parsed Topic
}

// knownTopics and knownQuantities bound what a connection remembers: a
// node with more topics or quantities has the others checked as without
// the cache, with nothing copied for them.
const (
	knownTopics     = 16
	knownQuantities = 16
)

// allowed reports whether the ACL allowed this connection to publish to
// topic before. The decision depends on the topic and the connection's
// identity alone, so it holds for every later publish.
func (c *publishCache) allowed(topic string) bool {
	_, ok := c.find(topic)
	return ok
}

// allow notes that the ACL allowed topic, while there is room.
func (c *publishCache) allow(topic string) {
	if len(c.topics) < knownTopics {
		name := strings.Clone(topic) // mochi's topic names share the packet's buffer
		c.topics = append(c.topics, allowedTopic{name, ParseTopic(name)})
	}
}

// topic is ParseTopic(name), from the cache when the name is in it.
func (c *publishCache) topic(name string) Topic {
	if t, ok := c.find(name); ok {
		return t
	}
	return ParseTopic(name)
}

func (c *publishCache) find(name string) (Topic, bool) {
	for i := range c.topics {
		if c.topics[i].name == name {
			return c.topics[i].parsed, true
		}
	}
	return Topic{}, false
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
