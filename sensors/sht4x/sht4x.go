package sht4x

import (
	"fmt"
	"sync"
	"time"

	"fieldgate/sensors/sensirion"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
)

// Precision trades measurement time for noise.
type Precision uint8

// Precision settings (datasheet Table 7).
const (
	High Precision = iota
	Medium
	Low
)

// Commands (datasheet §4.5).
var cmdMeasure = map[Precision]byte{High: 0xFD, Medium: 0xF6, Low: 0xE0}

const (
	cmdReadSerial = 0x89
	cmdSoftReset  = 0x94
)

// measureTime is the maximum duration per precision (datasheet Table 4),
// with a little margin.
var measureTime = map[Precision]time.Duration{
	High:   9 * time.Millisecond,
	Medium: 5 * time.Millisecond,
	Low:    2 * time.Millisecond,
}

// Opts configure a Dev.
type Opts struct {
	Precision Precision
}

// DefaultOpts uses high precision, 8.3 ms per reading.
var DefaultOpts = Opts{Precision: High}

// Dev is an SHT4x on an I²C bus.
type Dev struct {
	d      i2c.Dev
	opts   Opts
	serial uint32
	mu     sync.Mutex
}

// NewI2C soft-resets the sensor at addr and reads its serial number.
func NewI2C(bus i2c.Bus, addr uint16, opts *Opts) (*Dev, error) {
	if opts == nil {
		opts = &DefaultOpts
	}
	if _, ok := cmdMeasure[opts.Precision]; !ok {
		return nil, fmt.Errorf("sht4x: unknown precision %d", opts.Precision)
	}
	if addr < 0x44 || addr > 0x46 {
		return nil, fmt.Errorf("sht4x: address 0x%02X: the chip answers only at 0x44, 0x45 or 0x46", addr)
	}
	d := &Dev{d: i2c.Dev{Bus: bus, Addr: addr}, opts: *opts}
	if err := d.SoftReset(); err != nil {
		return nil, err
	}
	s, err := d.readSerial()
	if err != nil {
		return nil, err
	}
	d.serial = s
	return d, nil
}

// String names the device with its serial number.
func (d *Dev) String() string { return fmt.Sprintf("SHT4x{%s, serial %08X}", &d.d, d.serial) }

// Serial returns the chip's serial number, read at NewI2C.
func (d *Dev) Serial() uint32 { return d.serial }

// Sense takes one measurement and sets e.Temperature and e.Humidity; e.Pressure
// is left zero.
func (d *Dev) Sense(e *physic.Env) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	raw, err := d.command(cmdMeasure[d.opts.Precision], measureTime[d.opts.Precision], 6)
	if err != nil {
		return fmt.Errorf("sht4x: measure: %w", err)
	}
	t, h, err := Decode(raw)
	if err != nil {
		return err
	}
	e.Temperature, e.Humidity, e.Pressure = t, h, 0
	return nil
}

// Decode converts a 6-byte measurement to temperature and relative humidity.
// The SHT4x humidity formula (-6 %RH + 125 %RH × raw / 65535) can leave
// 0–100 %; the datasheet says to clip it, which Decode does.
func Decode(raw []byte) (physic.Temperature, physic.RelativeHumidity, error) {
	t, raw16, err := sensirion.Measurement(raw)
	if err != nil {
		return 0, 0, err
	}
	rh := -6*physic.PercentRH + physic.RelativeHumidity(int64(raw16)*int64(125*physic.PercentRH)/65535)
	return t, min(max(rh, 0), 100*physic.PercentRH), nil
}

func (d *Dev) readSerial() (uint32, error) {
	raw, err := d.command(cmdReadSerial, time.Millisecond, 6)
	if err != nil {
		return 0, fmt.Errorf("sht4x: read serial: %w", err)
	}
	w, err := sensirion.Words(raw)
	if err != nil {
		return 0, fmt.Errorf("sht4x: serial: %w", err)
	}
	return uint32(w[0])<<16 | uint32(w[1]), nil
}

// command sends cmd, waits wait, and reads n bytes.
func (d *Dev) command(cmd byte, wait time.Duration, n int) ([]byte, error) {
	if err := d.d.Tx([]byte{cmd}, nil); err != nil {
		return nil, err
	}
	time.Sleep(wait)
	raw := make([]byte, n)
	if err := d.d.Tx(nil, raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// SoftReset resets the chip; it takes at most 1 ms.
func (d *Dev) SoftReset() error {
	if err := d.d.Tx([]byte{cmdSoftReset}, nil); err != nil {
		return fmt.Errorf("sht4x: soft reset: %w", err)
	}
	time.Sleep(time.Millisecond)
	return nil
}

// Halt does nothing: the sensor idles between measurements.
func (d *Dev) Halt() error { return nil }

// Precision reports the datasheet's typical accuracy of the SHT40
// (±0.2 °C, ±1.8 %RH).
func (d *Dev) Precision(e *physic.Env) {
	e.Temperature = 200 * physic.MilliKelvin
	e.Humidity = 18 * physic.PercentRH / 10
	e.Pressure = 0
}
