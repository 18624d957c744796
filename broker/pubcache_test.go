package broker

import (
	"fmt"
	"testing"
	"unsafe"
)

// TestPublishCacheRemembersAFewTopics: a node's topics are each checked
// and parsed once; past knownTopics the others are checked every time,
// with nothing copied for them; a topic the ACL never allowed is never
// taken for one it did. A cache of one topic, as first written, copied
// the topic on every publish of a node alternating between two.
func TestPublishCacheRemembersAFewTopics(t *testing.T) {
	var c publishCache
	topic := func(i int) string { return fmt.Sprintf("fieldgate/esp32-a/q%d", i) }
	for i := range knownTopics + 4 {
		if c.allowed(topic(i)) {
			t.Fatalf("%s allowed before the ACL allowed it", topic(i))
		}
		c.allow(topic(i))
	}
	for i := range knownTopics + 4 {
		if got, want := c.allowed(topic(i)), i < knownTopics; got != want {
			t.Errorf("allowed(%s) = %v, want %v", topic(i), got, want)
		}
		if got, want := c.topic(topic(i)), ParseTopic(topic(i)); got != want {
			t.Errorf("topic(%s) = %+v, want %+v", topic(i), got, want)
		}
	}
	for _, foreign := range []string{"", "fieldgate/esp32-b/q0", "fieldgate/esp32-a/q0/x"} {
		if c.allowed(foreign) {
			t.Errorf("allowed(%q): never allowed by the ACL", foreign)
		}
	}
	known, past := topic(1), topic(knownTopics+1)
	if n := testing.AllocsPerRun(100, func() {
		for _, name := range []string{known, past} {
			if !c.allowed(name) {
				c.allow(name)
			}
			_ = c.topic(name)
		}
	}); n != 0 {
		t.Errorf("%v allocations per publish of a remembered topic and one past the bound, want 0", n)
	}
}

// TestPublishCacheCopiesTheTopic: mochi's topic names share the packet's
// buffer, which the next packet may overwrite; what the cache keeps must
// not change with it.
func TestPublishCacheCopiesTheTopic(t *testing.T) {
	var c publishCache
	buf := []byte("fieldgate/esp32-a/temperature")
	c.allow(unsafe.String(&buf[0], len(buf)))
	copy(buf, "fieldgate/esp32-b/humidity...")
	if !c.allowed("fieldgate/esp32-a/temperature") || c.allowed(string(buf)) {
		t.Fatal("the cache follows the packet's buffer")
	}
	if got := c.topic("fieldgate/esp32-a/temperature"); got.Device != "esp32-a" || got.Name != "temperature" {
		t.Errorf("cached parse %+v", got)
	}
}
