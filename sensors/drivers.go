package sensors

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"fieldgate/sensors/am2320"
	"fieldgate/sensors/sht3x"
	"fieldgate/sensors/sht4x"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/aht20"
	"periph.io/x/devices/v3/bmxx80"
	"periph.io/x/devices/v3/hdc302x"
	"periph.io/x/devices/v3/mcp9808"
	"periph.io/x/devices/v3/scd4x"
	"periph.io/x/devices/v3/tmp102"
)

// Quantities and their SenML units.
const (
	Temperature = "temperature" // Cel
	Humidity    = "humidity"    // %RH
	Pressure    = "pressure"    // Pa
	CO2         = "co2"         // ppm
)

// Driver describes one supported I²C chip: where it can answer, what it
// measures, the range it can physically report, and how to open it.
type Driver struct {
	// Name is what the configuration's driver: key says.
	Name string
	// Chip names the parts it covers, for people.
	Chip string
	// Addrs are the addresses the chip can have; the first is the default.
	Addrs []uint16
	// Quantities the chip measures.
	Quantities []string
	// MinTemp and MaxTemp bound the chip's operating range in °C; readings
	// outside it are physically impossible and rejected.
	MinTemp, MaxTemp float64
	// MinInterval is the shortest sensible poll interval (the chip's own
	// measurement period), if it has one.
	MinInterval time.Duration
	// Simulated is set for the driver with no chip ("sim"): it has no bus
	// or address, and OpenSimulated makes its sensors.
	Simulated bool

	open func(bus i2c.Bus, addr uint16) (Sensor, error)
	// identify reads an ID register where the chip has one, and reports
	// whether the chip at addr is this one. Nil: known by address only.
	identify func(bus i2c.Bus, addr uint16) bool
}

// Open opens the chip at addr on bus.
func (d *Driver) Open(bus i2c.Bus, addr uint16) (Sensor, error) {
	if d.Simulated {
		return nil, fmt.Errorf("%s: a simulated sensor has no bus (OpenSimulated)", d.Name)
	}
	if !slices.Contains(d.Addrs, addr) {
		return nil, fmt.Errorf("%s: address 0x%02X: the chip answers only at %s", d.Name, addr, FormatAddrs(d.Addrs))
	}
	return d.open(bus, addr)
}

// OpenSimulated makes a simulated driver's sensor; seed (its source)
// makes two of them look like two rooms.
func (d *Driver) OpenSimulated(seed string) Sensor { return NewSim(SimOpts{Seed: seed}) }

// Source is the readings' source id of sensor name with this driver at
// addr on bus: "i2c1-0x44", or "sim-NAME" for a simulated one.
func (d *Driver) Source(name string, bus int, addr uint16) string {
	if d.Simulated {
		return "sim-" + name
	}
	return fmt.Sprintf("i2c%d-0x%02x", bus, addr)
}

// Measures reports whether the driver measures quantity q.
func (d *Driver) Measures(q string) bool { return slices.Contains(d.Quantities, q) }

// FormatAddrs writes addresses as "0x44, 0x45".
func FormatAddrs(addrs []uint16) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = fmt.Sprintf("0x%02X", a)
	}
	return strings.Join(s, ", ")
}

// drivers is the registry: every supported chip, by configuration name,
// and the simulated sensor.
var drivers = map[string]*Driver{
	"sim": {
		Name: "sim", Chip: "simulated temperature and humidity (a daily cycle)", Simulated: true,
		Quantities: []string{Temperature, Humidity}, MinTemp: -40, MaxTemp: 85,
	},
	"sht3x": {
		Name: "sht3x", Chip: "Sensirion SHT30/SHT31/SHT35", Addrs: []uint16{0x44, 0x45},
		Quantities: []string{Temperature, Humidity}, MinTemp: -40, MaxTemp: 125,
		open: func(bus i2c.Bus, addr uint16) (Sensor, error) {
			d, err := sht3x.NewI2C(bus, addr, &sht3x.DefaultOpts)
			return envSensor{dev: d, quantities: []string{Temperature, Humidity}}, err
		},
		identify: identifySHT3x,
	},
	"sht4x": {
		Name: "sht4x", Chip: "Sensirion SHT40/SHT41/SHT45", Addrs: []uint16{0x44, 0x45, 0x46},
		Quantities: []string{Temperature, Humidity}, MinTemp: -40, MaxTemp: 125,
		open: func(bus i2c.Bus, addr uint16) (Sensor, error) {
			d, err := sht4x.NewI2C(bus, addr, &sht4x.DefaultOpts)
			return envSensor{dev: d, quantities: []string{Temperature, Humidity}}, err
		},
		identify: identifySHT4x,
	},
	"aht20": {
		Name: "aht20", Chip: "Aosong AHT20", Addrs: []uint16{0x38},
		Quantities: []string{Temperature, Humidity}, MinTemp: -40, MaxTemp: 85,
		open: func(bus i2c.Bus, _ uint16) (Sensor, error) {
			d, err := aht20.NewI2C(bus, &aht20.DefaultOpts)
			return envSensor{dev: d, quantities: []string{Temperature, Humidity}}, err
		},
	},
	"am2320": {
		Name: "am2320", Chip: "Aosong AM2320", Addrs: []uint16{0x5C},
		Quantities: []string{Temperature, Humidity}, MinTemp: -40, MaxTemp: 80, MinInterval: 2 * time.Second,
		open: func(bus i2c.Bus, addr uint16) (Sensor, error) {
			d, err := am2320.NewI2C(bus, addr)
			return envSensor{dev: d, quantities: []string{Temperature, Humidity}}, err
		},
	},
	"bme280": {
		Name: "bme280", Chip: "Bosch BME280 (BMP280: no humidity)", Addrs: []uint16{0x76, 0x77},
		Quantities: []string{Temperature, Humidity, Pressure}, MinTemp: -40, MaxTemp: 85,
		open: func(bus i2c.Bus, addr uint16) (Sensor, error) {
			d, err := bmxx80.NewI2C(bus, addr, &bmxx80.DefaultOpts)
			if err != nil {
				return nil, err
			}
			q := []string{Temperature, Humidity, Pressure}
			if strings.HasPrefix(d.String(), "BMP280") {
				q = []string{Temperature, Pressure}
			}
			return envSensor{dev: d, quantities: q}, nil
		},
		identify: identifyBME280,
	},
	"hdc302x": {
		Name: "hdc302x", Chip: "TI HDC3020/HDC3021/HDC3022", Addrs: []uint16{0x44, 0x45, 0x46, 0x47},
		Quantities: []string{Temperature, Humidity}, MinTemp: -40, MaxTemp: 125,
		open: func(bus i2c.Bus, addr uint16) (Sensor, error) {
			d, err := hdc302x.NewI2C(bus, addr, hdc302x.RateHertz)
			return envSensor{dev: d, quantities: []string{Temperature, Humidity}}, err
		},
		identify: identifyHDC302x,
	},
	"scd4x": {
		Name: "scd4x", Chip: "Sensirion SCD40/SCD41 (CO₂)", Addrs: []uint16{0x62},
		Quantities: []string{CO2, Temperature, Humidity}, MinTemp: -10, MaxTemp: 60, MinInterval: 5 * time.Second,
		open: func(bus i2c.Bus, addr uint16) (Sensor, error) {
			d, err := scd4x.NewI2C(bus, addr)
			return scdSensor{dev: d}, err
		},
	},
	"mcp9808": {
		Name: "mcp9808", Chip: "Microchip MCP9808", Addrs: []uint16{0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F},
		Quantities: []string{Temperature}, MinTemp: -40, MaxTemp: 125,
		open: func(bus i2c.Bus, addr uint16) (Sensor, error) {
			d, err := mcp9808.New(bus, &mcp9808.Opts{Addr: int(addr), Res: mcp9808.Maximum})
			return envSensor{dev: d, quantities: []string{Temperature}}, err
		},
		identify: identifyMCP9808,
	},
	"tmp102": {
		Name: "tmp102", Chip: "TI TMP102", Addrs: []uint16{0x48, 0x49, 0x4A, 0x4B},
		Quantities: []string{Temperature}, MinTemp: -40, MaxTemp: 125,
		open: func(bus i2c.Bus, addr uint16) (Sensor, error) {
			d, err := tmp102.NewI2C(bus, addr, nil)
			return envSensor{dev: d, quantities: []string{Temperature}}, err
		},
	},
}

// LookupDriver returns the driver with the given configuration name.
func LookupDriver(name string) (*Driver, bool) {
	d, ok := drivers[name]
	return d, ok
}

// DriverNames lists the driver names, sorted.
func DriverNames() []string {
	names := make([]string, 0, len(drivers))
	for n := range drivers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// envDevice is a periph-style sensor.
type envDevice interface {
	Sense(*physic.Env) error
	Halt() error
}

// envSensor adapts a periph-style device to Sensor. periph's Sense blocks
// without a context; the poller enforces the read timeout around it.
type envSensor struct {
	dev        envDevice
	quantities []string
}

// Read takes one measurement.
func (s envSensor) Read(ctx context.Context) ([]Measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var e physic.Env
	if err := s.dev.Sense(&e); err != nil {
		return nil, err
	}
	return envMeasurements(&e, s.quantities), nil
}

// Close halts the device.
func (s envSensor) Close() error { return s.dev.Halt() }

func envMeasurements(e *physic.Env, quantities []string) []Measurement {
	out := make([]Measurement, 0, len(quantities))
	for _, q := range quantities {
		switch q {
		case Temperature:
			out = append(out, Measurement{Temperature, round3(e.Temperature.Celsius()), "Cel"})
		case Humidity:
			out = append(out, Measurement{Humidity, round3(float64(e.Humidity) / float64(physic.PercentRH)), "%RH"})
		case Pressure:
			out = append(out, Measurement{Pressure, math.Round(float64(e.Pressure) / float64(physic.Pascal)), "Pa"})
		}
	}
	return out
}

// round3 drops the float noise of unit conversion (24.999999 → 25).
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// scdSensor adapts the SCD4x, whose Sense takes its own Env with CO₂.
type scdSensor struct{ dev *scd4x.Dev }

// Read takes one measurement: CO₂, temperature and humidity.
func (s scdSensor) Read(ctx context.Context) ([]Measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var e scd4x.Env
	if err := s.dev.Sense(&e); err != nil {
		return nil, err
	}
	return append([]Measurement{{CO2, float64(e.CO2), "ppm"}}, envMeasurements(&e.Env, []string{Temperature, Humidity})...), nil
}

// Close stops the SCD4x's periodic measurement.
func (s scdSensor) Close() error { return s.dev.Halt() }
