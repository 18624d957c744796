package am2320

import (
	"errors"
	"math"
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"
)

func read(answer ...byte) []i2ctest.IO {
	return []i2ctest.IO{
		{Addr: Addr, W: []byte{0x00}},
		{Addr: Addr, W: []byte{0x03, 0x00, 0x04}, R: answer},
	}
}

func TestSense(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer []byte
		tempC  float64
		rh     float64
	}{
		{"room", []byte{0x03, 0x04, 0x01, 0xF4, 0x00, 0xFB, 0xF0, 0x65}, 25.1, 50.0},
		{"below zero (sign and magnitude)", []byte{0x03, 0x04, 0x02, 0x8A, 0x80, 0x65, 0x70, 0x51}, -10.1, 65.0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewI2C(&i2ctest.Playback{Ops: read(tc.answer...)}, Addr)
			if err != nil {
				t.Fatal(err)
			}
			var e physic.Env
			if err := d.Sense(&e); err != nil {
				t.Fatal(err)
			}
			if got := e.Temperature.Celsius(); math.Abs(got-tc.tempC) > 1e-6 {
				t.Errorf("temperature %v, want %v", got, tc.tempC)
			}
			if got := float64(e.Humidity) / float64(physic.PercentRH); math.Abs(got-tc.rh) > 1e-6 {
				t.Errorf("humidity %v, want %v", got, tc.rh)
			}
		})
	}
}

func TestSenseFailures(t *testing.T) {
	var ce *CRCError
	d, _ := NewI2C(&i2ctest.Playback{Ops: read(0x03, 0x04, 0x01, 0xF4, 0x00, 0xFB, 0xF0, 0x66), DontPanic: true}, Addr)
	if err := d.Sense(&physic.Env{}); !errors.As(err, &ce) {
		t.Errorf("bad CRC: %v", err)
	}
	d, _ = NewI2C(&i2ctest.Playback{DontPanic: true}, Addr)
	if err := d.Sense(&physic.Env{}); err == nil {
		t.Error("no chip: Sense succeeded")
	}
	d, _ = NewI2C(&i2ctest.Playback{Ops: read(0x03, 0x04, 0x01), DontPanic: true}, Addr)
	if err := d.Sense(&physic.Env{}); err == nil {
		t.Error("short read: Sense succeeded")
	}
	if _, err := NewI2C(&i2ctest.Playback{}, 0x5D); err == nil {
		t.Error("address 0x5D accepted")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x03, 0x04, 0x01, 0xF4, 0x00, 0xFB, 0xF0, 0x65})
	f.Add([]byte{0x03, 0x04, 0x02, 0x8A, 0x80, 0x65, 0x70, 0x51})
	f.Fuzz(func(t *testing.T, r []byte) {
		temp, rh, err := Decode(r)
		if err != nil {
			return
		}
		if c := temp.Celsius(); c < -3276.8 || c > 3276.8 {
			t.Fatalf("temperature %v outside the encodable range", c)
		}
		if rh < 0 {
			t.Fatalf("negative humidity %v", rh)
		}
	})
}
