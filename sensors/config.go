package sensors

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is one entry of the configuration file's sensors: list, one field
// per key: the daemon decodes the file straight into it.
type Config struct {
	Name string `yaml:"name"`
	// Driver is one of DriverNames() ("sim": simulated).
	Driver string `yaml:"driver"`
	// Bus is the I²C bus number: 1 (the default) is /dev/i2c-1, the Pi's
	// header pins.
	Bus *int `yaml:"bus,omitempty"`
	// Address is the chip's 7-bit address; default the driver's first.
	Address  I2CAddr       `yaml:"address,omitempty"`
	Interval time.Duration `yaml:"interval"`
	// Offsets are calibration offsets added per quantity, e.g.
	// temperature: -0.4 for a sensor that reads warm in its enclosure.
	Offsets map[string]float64 `yaml:"offsets,omitempty"`
}

// I2CAddr is a 7-bit I²C address, written 0x44 in YAML.
type I2CAddr uint16

// UnmarshalYAML accepts 0x44, 68 or "0x44".
func (a *I2CAddr) UnmarshalYAML(n *yaml.Node) error {
	v, err := strconv.ParseUint(n.Value, 0, 16)
	if err != nil || n.Kind != yaml.ScalarNode {
		// A TypeError lets yaml.v3 go on decoding the rest and list every
		// such error at once.
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not an I2C address (write it like 0x44)", n.Line, n.Value)}}
	}
	*a = I2CAddr(v)
	return nil
}

// MarshalYAML writes the address in hex, as datasheets do.
func (a I2CAddr) MarshalYAML() (any, error) {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: a.String()}, nil
}

// String formats the address as 0x44.
func (a I2CAddr) String() string { return fmt.Sprintf("0x%02X", uint16(a)) }

// Source is the readings' source id: "i2c1-0x44", or "sim-NAME".
func (c *Config) Source() string {
	if d, ok := LookupDriver(c.Driver); ok {
		return d.Source(c.Name, c.busNum(), uint16(c.Address))
	}
	return fmt.Sprintf("i2c%d-0x%02x", c.busNum(), uint16(c.Address))
}

// busNum is the bus number, 0 when none is set (the simulated sensor).
func (c *Config) busNum() int {
	if c.Bus == nil {
		return 0
	}
	return *c.Bus
}

// FillDefaults sets what entries leave out: bus 1 and the driver's default
// address for I²C chips.
func FillDefaults(cfgs []Config) {
	for i := range cfgs {
		c := &cfgs[i]
		d, ok := LookupDriver(c.Driver)
		if !ok || d.Simulated {
			continue
		}
		if c.Bus == nil {
			one := 1
			c.Bus = &one
		}
		if c.Address == 0 {
			c.Address = I2CAddr(d.Addrs[0])
		}
	}
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// Validate checks every entry, reporting one message per problem to
// problem, naming its key within the list ("[1].interval").
func Validate(cfgs []Config, problem func(key, msg string)) {
	names := map[string]int{}
	at := map[string]int{} // "bus/address" → index
	for i, s := range cfgs {
		p := func(key, format string, args ...any) {
			problem("["+strconv.Itoa(i)+"]."+key, fmt.Sprintf(format, args...))
		}
		if !namePattern.MatchString(s.Name) {
			p("name", "%q: use 1 to 32 lowercase letters, digits, '_' or '-'", s.Name)
		} else if j, dup := names[s.Name]; dup {
			p("name", "%q is already the name of sensors[%d]", s.Name, j)
		}
		names[s.Name] = i
		minInterval := 100 * time.Millisecond
		var measures func(string) bool
		switch d, ok := LookupDriver(s.Driver); {
		case ok && d.Simulated:
			if s.Bus != nil || s.Address != 0 {
				p("driver", "the simulated sensor has no bus or address; remove them")
			}
			measures = d.Measures
		case !ok:
			p("driver", "unknown driver %q (known: %s)", s.Driver, strings.Join(DriverNames(), ", "))
		default:
			measures = d.Measures
			minInterval = max(minInterval, d.MinInterval)
			switch {
			case s.busNum() < 0 || s.busNum() > 255:
				p("bus", "%d: want a bus number from 0 to 255 (1 is /dev/i2c-1)", s.busNum())
			case s.Address < 0x03 || s.Address > 0x77:
				p("address", "%s is out of range: 7-bit I2C addresses run from 0x03 to 0x77", s.Address)
			case !slices.Contains(d.Addrs, uint16(s.Address)):
				p("address", "%s: a %s answers only at %s", s.Address, d.Name, FormatAddrs(d.Addrs))
			default:
				key := fmt.Sprintf("%d/%s", s.busNum(), s.Address)
				if j, dup := at[key]; dup {
					p("address", "bus %d address %s is already used by sensors[%d] (%s)", s.busNum(), s.Address, j, cfgs[j].Name)
				}
				at[key] = i
			}
		}
		if d := s.Interval; d < minInterval || d > 24*time.Hour {
			p("interval", "%s: want between %s and 24h", d, minInterval)
		}
		for q := range s.Offsets {
			if measures != nil && !measures(q) {
				p("offsets."+q, "%s does not measure %s", s.Driver, q)
			}
		}
	}
}

// Entry is the poller's entry for c (validated). An I²C sensor opens its
// bus and chip lazily, so one that is missing at start is reported failing
// and picked up when it appears.
func (c *Config) Entry(buses *Buses) Entry {
	e := Entry{Name: c.Name, Source: c.Source(), Driver: c.Driver, Interval: c.Interval, Offsets: c.Offsets}
	d, _ := LookupDriver(c.Driver)
	e.MinTemp, e.MaxTemp = d.MinTemp, d.MaxTemp
	if d.Simulated {
		source := e.Source
		e.Open = func() (Sensor, error) { return d.OpenSimulated(source), nil }
		return e
	}
	bus, addr := c.busNum(), uint16(c.Address)
	e.Bus = fmt.Sprintf("i2c-%d", bus)
	e.Open = func() (Sensor, error) {
		b, err := buses.Get(bus)
		if err != nil {
			return nil, err
		}
		return d.Open(b, addr)
	}
	return e
}
