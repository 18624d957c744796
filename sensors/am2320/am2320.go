// Package am2320 drives the Aosong AM2320 temperature and humidity sensor
// over I²C, in periph's style.
//
// periph.io/x/devices has an am2320 package, but it retries a failed read ten
// times with two-second sleeps (holding a shared bus for 20 s when the chip
// is unplugged) and reads the chip's sign-and-magnitude temperature as two's
// complement, so -10.1 °C comes out as -3266.7 °C. This driver makes one
// attempt per Sense and decodes the sign correctly; the poller retries.
//
// The chip sleeps between readings: the first write wakes it and is not
// acknowledged. Then a read of registers 0x00–0x03 (humidity, temperature)
// answers {0x03, 0x04, 4 data bytes, CRC-16/MODBUS low, high}.
//
// Datasheet: https://cdn-shop.adafruit.com/product-files/3721/AM2320.pdf
//
// Address: 0x5C (fixed).
package am2320

import (
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
)

// Addr is the chip's only address.
const Addr = 0x5C

// CRCError reports a response whose CRC-16 did not match.
type CRCError struct{ Got, Want uint16 }

// Error describes the mismatch.
func (e *CRCError) Error() string {
	return fmt.Sprintf("am2320: CRC mismatch: got 0x%04X, want 0x%04X", e.Got, e.Want)
}

// Dev is an AM2320 on an I²C bus.
type Dev struct {
	d  i2c.Dev
	mu sync.Mutex
}

// NewI2C returns the AM2320 at addr. It does not talk to the chip: the chip
// sleeps until a reading wakes it.
func NewI2C(bus i2c.Bus, addr uint16) (*Dev, error) {
	if addr != Addr {
		return nil, fmt.Errorf("am2320: address 0x%02X: the chip answers only at 0x5C", addr)
	}
	return &Dev{d: i2c.Dev{Bus: bus, Addr: addr}}, nil
}

// String names the device.
func (d *Dev) String() string { return fmt.Sprintf("AM2320{%s}", &d.d) }

// Sense wakes the chip, reads humidity and temperature, and sets them in e.
func (d *Dev) Sense(e *physic.Env) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	// The wake-up write is not acknowledged by a sleeping chip: its error
	// says nothing. Give the chip the datasheet's 800 µs–3 ms to wake.
	_ = d.d.Tx([]byte{0x00}, nil)
	time.Sleep(2 * time.Millisecond)
	var r [8]byte
	if err := d.d.Tx([]byte{0x03, 0x00, 0x04}, r[:]); err != nil {
		return fmt.Errorf("am2320: read: %w", err)
	}
	t, h, err := Decode(r[:])
	if err != nil {
		return err
	}
	e.Temperature, e.Humidity, e.Pressure = t, h, 0
	return nil
}

// Decode parses the 8-byte answer to "read 4 registers from 0x00".
func Decode(r []byte) (physic.Temperature, physic.RelativeHumidity, error) {
	if len(r) != 8 {
		return 0, 0, fmt.Errorf("am2320: answer of %d bytes, want 8", len(r))
	}
	if r[0] != 0x03 || r[1] != 0x04 {
		return 0, 0, fmt.Errorf("am2320: answer header % X, want 03 04", r[:2])
	}
	if got, want := uint16(r[6])|uint16(r[7])<<8, CRC16(r[:6]); got != want {
		return 0, 0, &CRCError{Got: got, Want: want}
	}
	h := physic.RelativeHumidity(uint16(r[2])<<8|uint16(r[3])) * physic.PercentRH / 10
	raw := uint16(r[4])<<8 | uint16(r[5])
	tenths := physic.Temperature(raw & 0x7FFF)
	if raw&0x8000 != 0 {
		tenths = -tenths
	}
	return physic.ZeroCelsius + tenths*physic.Celsius/10, h, nil
}

// CRC16 is CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF), as the
// datasheet specifies.
func CRC16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, x := range b {
		crc ^= uint16(x)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// Halt does nothing: the chip sleeps by itself.
func (d *Dev) Halt() error { return nil }
