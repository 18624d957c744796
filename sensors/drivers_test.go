package sensors

import (
	"context"
	"math"
	"strings"
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"
)

// driverCase is one driver opened on a playback of the chip's datasheet
// transactions, read once.
type driverCase struct {
	name   string
	driver string
	addr   uint16
	ops    []i2ctest.IO
	want   map[string]float64 // quantity → value
}

func tx(addr uint16, w []byte, r ...byte) i2ctest.IO { return i2ctest.IO{Addr: addr, W: w, R: r} }

var driverCases = []driverCase{
	{
		name: "sht3x room", driver: "sht3x", addr: 0x44,
		ops: []i2ctest.IO{
			tx(0x44, []byte{0x30, 0xA2}), tx(0x44, []byte{0x30, 0x66}), tx(0x44, []byte{0xF3, 0x2D}, 0x00, 0x00, 0x81),
			tx(0x44, []byte{0x24, 0x00}), tx(0x44, nil, 0x66, 0x66, 0x93, 0x80, 0x00, 0xA2),
		},
		want: map[string]float64{Temperature: 25, Humidity: 50.001},
	},
	{
		name: "sht4x freezing", driver: "sht4x", addr: 0x45,
		ops: []i2ctest.IO{
			tx(0x45, []byte{0x94}), tx(0x45, []byte{0x89}), tx(0x45, nil, 0x12, 0x34, 0x37, 0x56, 0x78, 0x7D),
			tx(0x45, []byte{0xFD}), tx(0x45, nil, 0x33, 0x33, 0x88, 0x80, 0x00, 0xA2),
		},
		want: map[string]float64{Temperature: -10, Humidity: 56.501},
	},
	{
		name: "aht20 room", driver: "aht20", addr: 0x38,
		ops: []i2ctest.IO{
			tx(0x38, []byte{0x71}, 0x18), // status: calibrated
			tx(0x38, []byte{0xAC, 0x33, 0x00}), tx(0x38, nil, 0x18, 0x80, 0x00, 0x06, 0x00, 0x00, 0x23),
		},
		want: map[string]float64{Temperature: 25, Humidity: 50},
	},
	{
		name: "aht20 cold", driver: "aht20", addr: 0x38,
		ops: []i2ctest.IO{
			tx(0x38, []byte{0x71}, 0x18),
			tx(0x38, []byte{0xAC, 0x33, 0x00}), tx(0x38, nil, 0x18, 0x80, 0x00, 0x03, 0x33, 0x33, 0x45),
		},
		want: map[string]float64{Temperature: -10, Humidity: 50},
	},
	{
		name: "am2320 room", driver: "am2320", addr: 0x5C,
		ops: []i2ctest.IO{
			tx(0x5C, []byte{0x00}),
			tx(0x5C, []byte{0x03, 0x00, 0x04}, 0x03, 0x04, 0x01, 0xF4, 0x00, 0xFB, 0xF0, 0x65),
		},
		want: map[string]float64{Temperature: 25.1, Humidity: 50},
	},
	{
		// The chip sends sign and magnitude: 0x8065 is -10.1 °C.
		name: "am2320 below zero", driver: "am2320", addr: 0x5C,
		ops: []i2ctest.IO{
			tx(0x5C, []byte{0x00}),
			tx(0x5C, []byte{0x03, 0x00, 0x04}, 0x03, 0x04, 0x02, 0x8A, 0x80, 0x65, 0x70, 0x51),
		},
		want: map[string]float64{Temperature: -10.1, Humidity: 65},
	},
	{
		// Bosch calibration and readings from periph's BME280 test.
		name: "bme280", driver: "bme280", addr: 0x76,
		ops: []i2ctest.IO{
			tx(0x76, []byte{0xD0}, 0x60),
			tx(0x76, []byte{0x88}, 0x10, 0x6e, 0x6c, 0x66, 0x32, 0x0, 0x5d, 0x95, 0xb8, 0xd5, 0xd0, 0xb, 0x77, 0x1e, 0x9d, 0xff, 0xf9, 0xff, 0xac, 0x26, 0xa, 0xd8, 0xbd, 0x10, 0x0, 0x4b),
			tx(0x76, []byte{0xE1}, 0x6e, 0x1, 0x0, 0x13, 0x5, 0x0, 0x1e),
			tx(0x76, []byte{0xf4, 0x6c, 0xf2, 0x3, 0xf5, 0xa0, 0xf4, 0x6c}),
			tx(0x76, []byte{0xF4, 0x6d}),
			tx(0x76, []byte{0xF3}, 0),
			tx(0x76, []byte{0xf7}, 0x4a, 0x52, 0xc0, 0x80, 0x96, 0xc0, 0x7a, 0x76),
		},
		want: map[string]float64{Temperature: 23.72, Humidity: 65.306, Pressure: 100943},
	},
	{
		// Readings from periph's HDC302x test: 26.621 °C, 23.2 %RH.
		name: "hdc302x", driver: "hdc302x", addr: 0x44,
		ops: []i2ctest.IO{
			tx(0x44, []byte{0x21, 0x30}),
			tx(0x44, []byte{0xE0, 0x00}, 0x68, 0xc5, 0x51, 0x3b, 0x82, 0x31),
		},
		want: map[string]float64{Temperature: 26.621, Humidity: 23.247},
	},
	{
		// Readings from periph's SCD4x test.
		name: "scd4x", driver: "scd4x", addr: 0x62,
		ops: []i2ctest.IO{
			tx(0x62, []byte{0x36, 0xF6}), tx(0x62, []byte{0x21, 0xB1}),
			tx(0x62, []byte{0xE4, 0xB8}, 0x80, 0x06, 0x04),
			tx(0x62, []byte{0xEC, 0x05}, 0x02, 0x1f, 0x35, 0x65, 0x82, 0xbb, 0x53, 0x5e, 0x2a),
		},
		want: map[string]float64{CO2: 543, Temperature: 24.394, Humidity: 32.568},
	},
	{
		name: "mcp9808 room", driver: "mcp9808", addr: 0x19,
		ops: []i2ctest.IO{
			tx(0x19, []byte{0x08, 0x03}), tx(0x19, []byte{0x01, 0x00, 0x00}),
			tx(0x19, []byte{0x05}, 0x01, 0x90),
		},
		want: map[string]float64{Temperature: 25},
	},
	{
		name: "mcp9808 freezing", driver: "mcp9808", addr: 0x18,
		ops: []i2ctest.IO{
			tx(0x18, []byte{0x08, 0x03}), tx(0x18, []byte{0x01, 0x00, 0x00}),
			tx(0x18, []byte{0x05}, 0x1F, 0x60),
		},
		want: map[string]float64{Temperature: -10},
	},
	{
		name: "tmp102 room", driver: "tmp102", addr: 0x48,
		ops: []i2ctest.IO{
			tx(0x48, []byte{0x01}, 0x60, 0xA0), tx(0x48, []byte{0x01, 0x60, 0xA0}),
			tx(0x48, []byte{0x00}, 0x19, 0x00),
		},
		want: map[string]float64{Temperature: 25},
	},
	{
		name: "tmp102 freezing", driver: "tmp102", addr: 0x49,
		ops: []i2ctest.IO{
			tx(0x49, []byte{0x01}, 0x60, 0xA0), tx(0x49, []byte{0x01, 0x60, 0xA0}),
			tx(0x49, []byte{0x00}, 0xF6, 0x00),
		},
		want: map[string]float64{Temperature: -10},
	},
}

func TestDriversOnPlayback(t *testing.T) {
	for _, tc := range driverCases {
		t.Run(tc.name, func(t *testing.T) {
			d, ok := LookupDriver(tc.driver)
			if !ok {
				t.Fatalf("driver %q not registered", tc.driver)
			}
			bus := &i2ctest.Playback{Ops: tc.ops, DontPanic: true}
			s, err := d.Open(bus, tc.addr)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			ms, err := s.Read(context.Background())
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			got := map[string]float64{}
			for _, m := range ms {
				got[m.Quantity] = m.Value
				if want := map[string]string{Temperature: "Cel", Humidity: "%RH", Pressure: "Pa", CO2: "ppm"}[m.Quantity]; m.Unit != want {
					t.Errorf("%s in %q, want %q", m.Quantity, m.Unit, want)
				}
				if !d.Measures(m.Quantity) {
					t.Errorf("driver reports %s but does not declare it", m.Quantity)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("quantities %v, want %v", got, tc.want)
			}
			for q, w := range tc.want {
				tol := 0.01
				if q == Pressure {
					tol = 1
				}
				if math.Abs(got[q]-w) > tol {
					t.Errorf("%s = %v, want %v", q, got[q], w)
				}
			}
			if bus.Count != len(bus.Ops) {
				t.Errorf("%d of %d datasheet transactions happened", bus.Count, len(bus.Ops))
			}
		})
	}
}

// TestTheSimulatedDriverIsARegistryEntry: "sim" is a driver like the
// chips, with no bus or address.
func TestTheSimulatedDriverIsARegistryEntry(t *testing.T) {
	d, ok := LookupDriver("sim")
	if !ok || !d.Simulated || d.Source("lab", 0, 0) != "sim-lab" || !d.Measures(Humidity) {
		t.Fatalf("sim: %+v", d)
	}
	if _, err := d.Open(nil, 0); err == nil {
		t.Error("a simulated driver opened on a bus")
	}
	ms, err := d.OpenSimulated("sim-lab").Read(context.Background())
	if err != nil || len(ms) != 2 {
		t.Errorf("a simulated read: %v, %v", ms, err)
	}
	if sht, _ := LookupDriver("sht3x"); sht.Source("cellar", 1, 0x44) != "i2c1-0x44" {
		t.Errorf("sht3x source %q", sht.Source("cellar", 1, 0x44))
	}
}

func TestDriversFailCleanlyWithoutAChip(t *testing.T) {
	for _, name := range DriverNames() {
		d, _ := LookupDriver(name)
		if d.Simulated {
			continue // no chip to miss
		}
		t.Run(name, func(t *testing.T) {
			bus := &i2ctest.Playback{DontPanic: true} // every transaction NACKs
			s, err := d.Open(bus, d.Addrs[0])
			if err == nil {
				// Some drivers (am2320, hdc302x) talk to the chip only when
				// reading; then the read must fail.
				if _, err = s.Read(context.Background()); err == nil {
					t.Fatal("a read on an empty bus succeeded")
				}
			}
		})
	}
}

func TestDriverRejectsWrongAddress(t *testing.T) {
	d, _ := LookupDriver("sht3x")
	if _, err := d.Open(&i2ctest.Playback{}, 0x40); err == nil || !strings.Contains(err.Error(), "0x44, 0x45") {
		t.Fatalf("Open at 0x40: %v", err)
	}
}

func TestWrappedDriversReportCorruptAndShortReads(t *testing.T) {
	for _, tc := range []struct {
		name, driver string
		addr         uint16
		ops          []i2ctest.IO
		kind         string // what the poller counts it as
	}{
		{"aht20 CRC", "aht20", 0x38, []i2ctest.IO{
			tx(0x38, []byte{0x71}, 0x18),
			tx(0x38, []byte{0xAC, 0x33, 0x00}), tx(0x38, nil, 0x18, 0x80, 0x00, 0x06, 0x00, 0x00, 0x24),
		}, FailCRC},
		{"hdc302x CRC", "hdc302x", 0x44, []i2ctest.IO{
			tx(0x44, []byte{0x21, 0x30}),
			tx(0x44, []byte{0xE0, 0x00}, 0x68, 0xc5, 0x52, 0x3b, 0x82, 0x31),
		}, FailCRC},
		{"am2320 CRC", "am2320", 0x5C, []i2ctest.IO{
			tx(0x5C, []byte{0x00}),
			tx(0x5C, []byte{0x03, 0x00, 0x04}, 0x03, 0x04, 0x01, 0xF4, 0x00, 0xFB, 0xF0, 0x66),
		}, FailCRC},
		{"tmp102 short read", "tmp102", 0x48, []i2ctest.IO{
			tx(0x48, []byte{0x01}, 0x60, 0xA0), tx(0x48, []byte{0x01, 0x60, 0xA0}),
			tx(0x48, []byte{0x00}, 0x19),
		}, FailBus},
		{"mcp9808 NACK on read", "mcp9808", 0x18, []i2ctest.IO{
			tx(0x18, []byte{0x08, 0x03}), tx(0x18, []byte{0x01, 0x00, 0x00}),
		}, FailBus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := LookupDriver(tc.driver)
			s, err := d.Open(&i2ctest.Playback{Ops: tc.ops, DontPanic: true}, tc.addr)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			_, err = s.Read(context.Background())
			if err == nil {
				t.Fatal("Read succeeded")
			}
			if got := classify(err); got != tc.kind {
				t.Errorf("%v counted as %q, want %q", err, got, tc.kind)
			}
		})
	}
}
