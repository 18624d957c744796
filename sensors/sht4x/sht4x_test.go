package sht4x

import (
	"errors"
	"math"
	"testing"

	"fieldgate/sensors/sensirion"

	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"
)

const addr = 0x44

// startup is what NewI2C sends: soft reset, then the serial number 0x12345678.
var startup = []i2ctest.IO{
	{Addr: addr, W: []byte{0x94}},
	{Addr: addr, W: []byte{0x89}},
	{Addr: addr, R: []byte{0x12, 0x34, 0x37, 0x56, 0x78, 0x7D}},
}

func measure(raw ...byte) []i2ctest.IO {
	return []i2ctest.IO{{Addr: addr, W: []byte{0xFD}}, {Addr: addr, R: raw}}
}

func TestSenseConversions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		raw      []byte
		tempC    float64
		humidity float64
	}{
		// RH = -6 + 125 × 0x8000/65535 = 56.50
		{"room", []byte{0x66, 0x66, 0x93, 0x80, 0x00, 0xA2}, 25.0, 56.50},
		{"freezing night", []byte{0x33, 0x33, 0x88, 0x80, 0x00, 0xA2}, -10.0, 56.50},
		// RH = -6 + 125 × 0x0800/65535 = -2.09: clipped to 0
		{"below 0 %RH is clipped", []byte{0x00, 0x00, 0x81, 0x08, 0x00, 0xB6}, -45.0, 0},
		// RH = 119: clipped to 100
		{"above 100 %RH is clipped", []byte{0xFF, 0xFF, 0xAC, 0xFF, 0xFF, 0xAC}, 130.0, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bus := &i2ctest.Playback{Ops: append(append([]i2ctest.IO{}, startup...), measure(tc.raw...)...)}
			d, err := NewI2C(bus, addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d.Serial() != 0x12345678 {
				t.Errorf("serial %08X, want 12345678", d.Serial())
			}
			var e physic.Env
			if err := d.Sense(&e); err != nil {
				t.Fatal(err)
			}
			if got := e.Temperature.Celsius(); math.Abs(got-tc.tempC) > 0.005 {
				t.Errorf("temperature %.4f °C, want %.2f", got, tc.tempC)
			}
			if got := float64(e.Humidity) / float64(physic.PercentRH); math.Abs(got-tc.humidity) > 0.01 {
				t.Errorf("humidity %.4f %%RH, want %.2f", got, tc.humidity)
			}
			if err := bus.Close(); err != nil {
				t.Errorf("not every transaction happened: %v", err)
			}
		})
	}
}

func TestSenseFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ops   []i2ctest.IO
		check func(error) bool
	}{
		{"CRC mismatch in humidity", measure(0x66, 0x66, 0x93, 0x80, 0x00, 0xA3), func(err error) bool {
			var ce *sensirion.CRCError
			return errors.As(err, &ce) && ce.WordOffset == 1
		}},
		{"NACK", measure(), func(err error) bool { return err != nil }},
		{"short read", measure(0x66, 0x66), func(err error) bool { return err != nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bus := &i2ctest.Playback{Ops: append(append([]i2ctest.IO{}, startup...), tc.ops...), DontPanic: true}
			d, err := NewI2C(bus, addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Sense(&physic.Env{}); !tc.check(err) {
				t.Fatalf("Sense: %v", err)
			}
		})
	}
}

func TestNewI2CRejectsBadSerialCRCAndAddresses(t *testing.T) {
	bus := &i2ctest.Playback{Ops: []i2ctest.IO{
		{Addr: addr, W: []byte{0x94}},
		{Addr: addr, W: []byte{0x89}},
		{Addr: addr, R: []byte{0x12, 0x34, 0x00, 0x56, 0x78, 0x7D}},
	}}
	var ce *sensirion.CRCError
	if _, err := NewI2C(bus, addr, nil); !errors.As(err, &ce) {
		t.Fatalf("bad serial CRC: %v, want a CRCError", err)
	}
	if _, err := NewI2C(&i2ctest.Playback{}, 0x47, nil); err == nil {
		t.Fatal("address 0x47 accepted")
	}
	if _, err := NewI2C(&i2ctest.Playback{DontPanic: true}, addr, nil); err == nil {
		t.Fatal("NewI2C succeeded with nothing on the bus")
	}
}

func TestPrecisionCommands(t *testing.T) {
	for p, cmd := range map[Precision]byte{Medium: 0xF6, Low: 0xE0} {
		ops := append(append([]i2ctest.IO{}, startup...),
			i2ctest.IO{Addr: addr, W: []byte{cmd}},
			i2ctest.IO{Addr: addr, R: []byte{0x66, 0x66, 0x93, 0x80, 0x00, 0xA2}})
		d, err := NewI2C(&i2ctest.Playback{Ops: ops}, addr, &Opts{Precision: p})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Sense(&physic.Env{}); err != nil {
			t.Fatalf("precision %d: %v", p, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x66, 0x66, 0x93, 0x80, 0x00, 0xA2})
	f.Add([]byte{0x00, 0x00, 0x81, 0x08, 0x00, 0xB6})
	f.Fuzz(func(t *testing.T, raw []byte) {
		temp, rh, err := Decode(raw)
		if err != nil {
			return
		}
		if c := temp.Celsius(); c < -45.001 || c > 130.001 {
			t.Fatalf("temperature %v outside the chip's scale", c)
		}
		if rh < 0 || rh > 100*physic.PercentRH {
			t.Fatalf("humidity %v outside 0–100 %%", rh)
		}
	})
}
