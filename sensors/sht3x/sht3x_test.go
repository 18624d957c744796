package sht3x

import (
	"errors"
	"math"
	"testing"

	"fieldgate/sensors/sensirion"

	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"
)

const addr = 0x44

// startup is what NewI2C sends: soft reset, heater off, status read.
var startup = []i2ctest.IO{
	{Addr: addr, W: []byte{0x30, 0xA2}},
	{Addr: addr, W: []byte{0x30, 0x66}},
	{Addr: addr, W: []byte{0xF3, 0x2D}, R: []byte{0x00, 0x10, 0xC2}}, // reset-detected bit set
}

// measure is one high-repeatability single shot returning raw.
func measure(raw ...byte) []i2ctest.IO {
	return []i2ctest.IO{
		{Addr: addr, W: []byte{0x24, 0x00}},
		{Addr: addr, R: raw},
	}
}

func TestSenseConversions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		raw      []byte
		tempC    float64
		humidity float64
	}{
		{"room", []byte{0x66, 0x66, 0x93, 0x80, 0x00, 0xA2}, 25.0, 50.0},
		{"freezing night", []byte{0x33, 0x33, 0x88, 0xFF, 0xFF, 0xAC}, -10.0, 100.0},
		{"bottom of the range", []byte{0x00, 0x00, 0x81, 0x00, 0x00, 0x81}, -45.0, 0.0},
		{"top of the range", []byte{0xFF, 0xFF, 0xAC, 0x00, 0x00, 0x81}, 130.0, 0.0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bus := &i2ctest.Playback{Ops: append(append([]i2ctest.IO{}, startup...), measure(tc.raw...)...)}
			d, err := NewI2C(bus, addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			var e physic.Env
			if err := d.Sense(&e); err != nil {
				t.Fatal(err)
			}
			if got := e.Temperature.Celsius(); math.Abs(got-tc.tempC) > 0.005 {
				t.Errorf("temperature %.4f °C, want %.2f", got, tc.tempC)
			}
			if got := float64(e.Humidity) / float64(physic.PercentRH); math.Abs(got-tc.humidity) > 0.005 {
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
		{"CRC mismatch", measure(0x66, 0x66, 0x94, 0x80, 0x00, 0xA2), func(err error) bool {
			var ce *sensirion.CRCError
			return errors.As(err, &ce) && ce.Got == 0x94 && ce.Want == 0x93
		}},
		{"NACK on read (still measuring or unplugged)", measure(), func(err error) bool { return err != nil }},
		{"short read", measure(0x66, 0x66, 0x93), func(err error) bool { return err != nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bus := &i2ctest.Playback{Ops: append(append([]i2ctest.IO{}, startup...), tc.ops...), DontPanic: true}
			d, err := NewI2C(bus, addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = d.Sense(&physic.Env{})
			if !tc.check(err) {
				t.Fatalf("Sense: %v", err)
			}
		})
	}
}

func TestNewI2CFailsWithoutAChip(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true} // nothing answers
	if _, err := NewI2C(bus, addr, nil); err == nil {
		t.Fatal("NewI2C succeeded on an empty bus")
	}
	if _, err := NewI2C(&i2ctest.Playback{}, 0x40, nil); err == nil {
		t.Fatal("NewI2C accepted address 0x40")
	}
}

func TestRepeatabilityCommands(t *testing.T) {
	for rep, cmd := range map[Repeatability][]byte{Medium: {0x24, 0x0B}, Low: {0x24, 0x16}} {
		ops := append(append([]i2ctest.IO{}, startup...),
			i2ctest.IO{Addr: addr, W: cmd},
			i2ctest.IO{Addr: addr, R: []byte{0x66, 0x66, 0x93, 0x80, 0x00, 0xA2}})
		bus := &i2ctest.Playback{Ops: ops}
		d, err := NewI2C(bus, addr, &Opts{Repeatability: rep})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Sense(&physic.Env{}); err != nil {
			t.Fatalf("repeatability %d: %v", rep, err)
		}
	}
}

func TestStatusAndClear(t *testing.T) {
	bus := &i2ctest.Playback{Ops: append(append([]i2ctest.IO{}, startup...),
		i2ctest.IO{Addr: addr, W: []byte{0x30, 0x41}},
		i2ctest.IO{Addr: addr, W: []byte{0xF3, 0x2D}, R: []byte{0x00, 0x00, 0x81}},
	)}
	d, err := NewI2C(bus, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.ClearStatus(); err != nil {
		t.Fatal(err)
	}
	st, err := d.Status()
	if err != nil || st&StatusResetDetected != 0 || st&StatusHeaterOn != 0 {
		t.Fatalf("status after clear: %016b, %v", st, err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x66, 0x66, 0x93, 0x80, 0x00, 0xA2})
	f.Add([]byte{0xFF, 0xFF, 0xAC, 0x00, 0x00, 0x81})
	f.Add([]byte{1, 2, 3})
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
