package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"fieldgate/sensors"
)

// SensorConfig is one local sensor.
type SensorConfig struct {
	Name string `yaml:"name"`
	// Driver is one of sensors.DriverNames() ("sim": simulated).
	Driver string `yaml:"driver"`
	// Bus is the I²C bus number: 1 (the default) is /dev/i2c-1, the Pi's
	// header pins.
	Bus *int `yaml:"bus,omitempty"`
	// Address is the chip's 7-bit address; default the driver's first.
	Address  I2CAddr  `yaml:"address,omitempty"`
	Interval Duration `yaml:"interval"`
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
		return valueError(n, "%q is not an I2C address (write it like 0x44)", n.Value)
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

// source is the readings' source id: "i2c1-0x44", or "sim-NAME".
func (s *SensorConfig) source() string {
	if d, ok := sensors.LookupDriver(s.Driver); ok {
		return d.Source(s.Name, s.busNum(), uint16(s.Address))
	}
	return fmt.Sprintf("i2c%d-0x%02x", s.busNum(), uint16(s.Address))
}

// busNum is the bus number, 0 when none is set (the simulated sensor).
func (s *SensorConfig) busNum() int {
	if s.Bus == nil {
		return 0
	}
	return *s.Bus
}

// fillSensorDefaults sets what an entry leaves out: bus 1 and the driver's
// default address for I²C chips.
func fillSensorDefaults(cfgs []SensorConfig) {
	for i := range cfgs {
		c := &cfgs[i]
		d, ok := sensors.LookupDriver(c.Driver)
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

// validateSensors checks every sensor entry, adding one message per problem.
func validateSensors(cfgs []SensorConfig, add func(path, format string, args ...any)) {
	names := map[string]int{}
	at := map[string]int{} // "bus/address" → index
	known := sensors.DriverNames()
	for i, s := range cfgs {
		p := "sensors[" + strconv.Itoa(i) + "]"
		if !namePattern.MatchString(s.Name) {
			add(p+".name", "%q: use 1 to 32 lowercase letters, digits, '_' or '-'", s.Name)
		} else if j, dup := names[s.Name]; dup {
			add(p+".name", "%q is already the name of sensors[%d]", s.Name, j)
		}
		names[s.Name] = i
		minInterval := 100 * time.Millisecond
		var measures func(string) bool
		switch d, ok := sensors.LookupDriver(s.Driver); {
		case ok && d.Simulated:
			if s.Bus != nil || s.Address != 0 {
				add(p+".driver", "the simulated sensor has no bus or address; remove them")
			}
			measures = d.Measures
		case !ok:
			add(p+".driver", "unknown driver %q (known: %s)", s.Driver, strings.Join(known, ", "))
		default:
			measures = d.Measures
			minInterval = max(minInterval, d.MinInterval)
			switch {
			case s.busNum() < 0 || s.busNum() > 255:
				add(p+".bus", "%d: want a bus number from 0 to 255 (1 is /dev/i2c-1)", s.busNum())
			case s.Address < 0x03 || s.Address > 0x77:
				add(p+".address", "%s is out of range: 7-bit I2C addresses run from 0x03 to 0x77", s.Address)
			case !slices.Contains(d.Addrs, uint16(s.Address)):
				add(p+".address", "%s: a %s answers only at %s", s.Address, d.Name, sensors.FormatAddrs(d.Addrs))
			default:
				key := fmt.Sprintf("%d/%s", s.busNum(), s.Address)
				if j, dup := at[key]; dup {
					add(p+".address", "bus %d address %s is already used by sensors[%d] (%s)", s.busNum(), s.Address, j, cfgs[j].Name)
				}
				at[key] = i
			}
		}
		if d := time.Duration(s.Interval); d < minInterval || d > 24*time.Hour {
			add(p+".interval", "%s: want between %s and 24h", d, minInterval)
		}
		for q := range s.Offsets {
			if measures != nil && !measures(q) {
				add(p+".offsets."+q, "%s does not measure %s", s.Driver, q)
			}
		}
	}
}
