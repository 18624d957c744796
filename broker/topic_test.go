package broker

import (
	"slices"
	"strings"
	"testing"
)

func TestParseTopic(t *testing.T) {
	for topic, want := range map[string]Topic{
		"fieldgate/esp32-a/temperature":         {KindPlain, "esp32-a", "temperature"},
		"fieldgate/esp32-a/senml":               {KindSenML, "esp32-a", ""},
		"esp32-a/sensor/bme_humidity/state":     {KindESPHome, "esp32-a", "bme_humidity"},
		"tele/tasmota-1/SENSOR":                 {KindTasmota, "tasmota-1", ""},
		"tele/tasmota-1/LWT":                    {KindAvailability, "tasmota-1", ""},
		"esp32-a/status":                        {KindAvailability, "esp32-a", ""},
		"tele/tasmota-1/STATE":                  {},
		"fieldgate/esp32-a":                     {},
		"fieldgate/esp32-a/cmd/reboot/x":        {},
		"esp32-a/sensor/t":                      {},
		"homeassistant/sensor/esp32-a/t/config": {},
	} {
		if got := ParseTopic(topic); got != want {
			t.Errorf("ParseTopic(%q) = %+v, want %+v", topic, got, want)
		}
	}
}

// TestACLMatrix: each device × topic shape × publish/subscribe.
func TestACLMatrix(t *testing.T) {
	type row struct {
		topic          string
		pubA, pubB     bool // may esp32-a, esp32-b publish?
		subA, subB     bool // may they subscribe?
		pubAdm, subAdm bool
	}
	for _, r := range []row{
		{"fieldgate/esp32-a/temperature", true, false, false, false, true, true},
		{"fieldgate/esp32-a/senml", true, false, false, false, true, true},
		{"esp32-a/sensor/temp/state", true, false, false, false, true, true},
		{"esp32-a/status", true, false, false, false, true, true},
		{"tele/esp32-a/SENSOR", true, false, false, false, true, true},
		{"tele/esp32-a/LWT", true, false, false, false, true, true},
		{"tele/esp32-a/STATE", true, false, false, false, true, true},
		{"homeassistant/sensor/esp32-a/temp/config", true, false, false, false, true, true},
		{"fieldgate/esp32-b/temperature", false, true, false, false, true, true},
		{"fieldgate/esp32-a/cmd/#", false, false, true, false, false, true},
		{"fieldgate/esp32-a/cmd/reboot", false, false, true, false, true, true},
		{"fieldgate/esp32-b/cmd/#", false, false, false, true, false, true},
		{"fieldgate/+/cmd/#", false, false, false, false, false, true},
		{"fieldgate/#", false, false, false, false, false, true},
		{"#", false, false, false, false, false, true},
		{"$SYS/broker/clients", false, false, false, false, false, true},
		{"fieldgate/gateway/i2c1-0x44/temperature", false, false, false, false, false, true},
		{"cmnd/esp32-a/POWER", true, false, false, false, true, true},
	} {
		for _, c := range []struct {
			who   string
			admin bool
			pub   bool
			sub   bool
		}{{"esp32-a", false, r.pubA, r.subA}, {"esp32-b", false, r.pubB, r.subB}, {"", true, r.pubAdm, r.subAdm}} {
			topicOK := r.topic[len(r.topic)-1] != '#' && !containsRune(r.topic, '+')
			if topicOK {
				if got := CanPublish(c.who, c.admin, r.topic); got != c.pub {
					t.Errorf("%s (admin %v) publish %q: %v, want %v", c.who, c.admin, r.topic, got, c.pub)
				}
			}
			if got := CanSubscribe(c.who, c.admin, r.topic); got != c.sub {
				t.Errorf("%s (admin %v) subscribe %q: %v, want %v", c.who, c.admin, r.topic, got, c.sub)
			}
		}
	}
	if CanPublish(GatewayDevice, false, "gateway/x") || CanPublish("", false, "x/status") {
		t.Error("the reserved gateway id or an empty device may publish")
	}
}

func containsRune(s string, r rune) bool {
	for _, c := range s {
		if c == r {
			return true
		}
	}
	return false
}

func TestSegmentsSplitsLikeStringsSplit(t *testing.T) {
	for _, topic := range []string{"", "/", "a", "a/", "/a", "a//b", "a/b/c", "a/b/c/d", "a/b/c/d/", "a/b/c/d/e/f", "fieldgate/esp32-a/temperature"} {
		want := strings.Split(topic, "/")
		var p [4]string
		n := segments(topic, &p)
		if len(want) > len(p) {
			if n != len(p)+1 || !slices.Equal(p[:], want[:len(p)]) {
				t.Errorf("segments(%q) = %d %q, want %d and the first %d of %q", topic, n, p, len(p)+1, len(p), want)
			}
			continue
		}
		if n != len(want) || !slices.Equal(p[:n], want) {
			t.Errorf("segments(%q) = %q, want %q", topic, p[:n], want)
		}
	}
}
