package broker

import "strings"

// Kind is the shape of a topic a device publishes to.
type Kind uint8

// Topic shapes accepted out of the box (the README's "MQTT: ESP32 nodes").
const (
	KindNone         Kind = iota // matches no shape: counted and dropped
	KindPlain                    // fieldgate/{device}/{quantity}: a plain number
	KindSenML                    // fieldgate/{device}/senml: a SenML JSON pack
	KindESPHome                  // {device}/sensor/{name}/state: ESPHome, a plain number
	KindTasmota                  // tele/{device}/SENSOR: Tasmota JSON
	KindAvailability             // {device}/status (ESPHome), tele/{device}/LWT (Tasmota)
)

// GatewayDevice is the device segment of the gateway's own topics
// (fieldgate/gateway/{source}/{quantity}); no device may have this id.
const GatewayDevice = "gateway"

// Topic is a parsed topic.
type Topic struct {
	Kind   Kind
	Device string
	// Name is the quantity (KindPlain) or the ESPHome sensor's name.
	Name string
}

// ParseTopic recognises the topic shapes fieldgate ingests.
func ParseTopic(topic string) Topic {
	var p [4]string
	switch n := segments(topic, &p); {
	case n == 3 && p[0] == "fieldgate" && p[2] == "senml":
		return Topic{Kind: KindSenML, Device: p[1]}
	case n == 3 && p[0] == "fieldgate" && p[1] != "" && p[2] != "":
		return Topic{Kind: KindPlain, Device: p[1], Name: p[2]}
	case n == 3 && p[0] == "tele" && p[2] == "SENSOR":
		return Topic{Kind: KindTasmota, Device: p[1]}
	case n == 3 && p[0] == "tele" && p[2] == "LWT":
		return Topic{Kind: KindAvailability, Device: p[1]}
	case n == 4 && p[1] == "sensor" && p[3] == "state" && p[2] != "":
		return Topic{Kind: KindESPHome, Device: p[0], Name: p[2]}
	case n == 2 && p[1] == "status":
		return Topic{Kind: KindAvailability, Device: p[0]}
	}
	return Topic{Kind: KindNone}
}

// segments splits topic at its slashes into p, as strings.Split would but
// without allocating (every publish is parsed): it returns the number of
// segments, or len(p)+1 when there are more than p holds.
func segments(topic string, p *[4]string) int {
	for n := range p {
		i := strings.IndexByte(topic, '/')
		if i < 0 {
			p[n] = topic
			return n + 1
		}
		p[n], topic = topic[:i], topic[i+1:]
	}
	return len(p) + 1
}

// deviceSegment returns the device a topic belongs to: the segment after
// fieldgate/, tele/, stat/ or cmnd/ (Tasmota), the node segment of a
// homeassistant/ discovery topic, else the first segment (ESPHome's prefix).
func deviceSegment(topic string) string {
	var p [4]string
	n := segments(topic, &p)
	switch {
	case n >= 2 && (p[0] == "fieldgate" || p[0] == "tele" || p[0] == "stat" || p[0] == "cmnd"):
		return p[1]
	case n >= 3 && p[0] == "homeassistant":
		return p[2]
	}
	return p[0]
}

// cmdPrefix is where a device's commands and configuration are published
// for it.
func cmdPrefix(device string) string { return "fieldgate/" + device + "/cmd/" }

// isCommandTopic reports whether topic starts with cmdPrefix(device).
func isCommandTopic(topic, device string) bool {
	rest, ok := strings.CutPrefix(topic, "fieldgate/")
	if !ok {
		return false
	}
	rest, ok = strings.CutPrefix(rest, device)
	return ok && strings.HasPrefix(rest, "/cmd/")
}

// CanPublish reports whether device may publish to topic: only to topics
// whose device segment is its own, never to its command topics (those are
// for the gateway to send), never to $ topics. The admin may publish
// anywhere but the gateway's own topics.
func CanPublish(device string, admin bool, topic string) bool {
	switch {
	case topic == "" || strings.HasPrefix(topic, "$"):
		return false
	case deviceSegment(topic) == GatewayDevice && strings.HasPrefix(topic, "fieldgate/"):
		return false
	case admin:
		return true
	case device == "" || device == GatewayDevice:
		return false
	}
	return deviceSegment(topic) == device && !isCommandTopic(topic, device)
}

// CanSubscribe reports whether device may subscribe to filter: its own
// command topics (fieldgate/{device}/cmd/#) and nothing else; $SYS and
// everything else only for the admin.
func CanSubscribe(device string, admin bool, filter string) bool {
	if admin {
		return true
	}
	if device == "" || device == GatewayDevice {
		return false
	}
	return filter == "fieldgate/"+device+"/cmd/#" || strings.HasPrefix(filter, cmdPrefix(device))
}
