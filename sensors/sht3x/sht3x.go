package sht3x

import (
	"fmt"
	"sync"
	"time"

	"fieldgate/sensors/sensirion"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
)

// Repeatability trades measurement time and self-heating for noise.
type Repeatability uint8

// Repeatability settings (datasheet Table 9).
const (
	High Repeatability = iota
	Medium
	Low
)

// Commands (datasheet §4).
var (
	cmdMeasure = map[Repeatability][]byte{
		High:   {0x24, 0x00},
		Medium: {0x24, 0x0B},
		Low:    {0x24, 0x16},
	}
	cmdSoftReset   = []byte{0x30, 0xA2}
	cmdHeaterOff   = []byte{0x30, 0x66}
	cmdReadStatus  = []byte{0xF3, 0x2D}
	cmdClearStatus = []byte{0x30, 0x41}
)

// measureTime is the maximum measurement duration per repeatability
// (datasheet Table 4), with a little margin for the Pi's scheduler.
var measureTime = map[Repeatability]time.Duration{
	High:   16 * time.Millisecond,
	Medium: 7 * time.Millisecond,
	Low:    5 * time.Millisecond,
}

// Opts configure a Dev.
type Opts struct {
	Repeatability Repeatability
}

// DefaultOpts uses high repeatability: the best accuracy, 15 ms per reading.
var DefaultOpts = Opts{Repeatability: High}

// Status is the sensor's status register (datasheet Table 17).
type Status uint16

// Status bits.
const (
	StatusAlertPending  Status = 1 << 15
	StatusHeaterOn      Status = 1 << 13
	StatusResetDetected Status = 1 << 4
	StatusCommandFailed Status = 1 << 1
	StatusWriteCRCFail  Status = 1 << 0
)

// Dev is an SHT3x on an I²C bus.
type Dev struct {
	d    i2c.Dev
	opts Opts
	mu   sync.Mutex
}

// NewI2C resets the sensor at addr, switches its heater off and reads its
// status register to make sure a working SHT3x answers there.
func NewI2C(bus i2c.Bus, addr uint16, opts *Opts) (*Dev, error) {
	if opts == nil {
		opts = &DefaultOpts
	}
	if _, ok := cmdMeasure[opts.Repeatability]; !ok {
		return nil, fmt.Errorf("sht3x: unknown repeatability %d", opts.Repeatability)
	}
	if addr != 0x44 && addr != 0x45 {
		return nil, fmt.Errorf("sht3x: address 0x%02X: the chip answers only at 0x44 or 0x45", addr)
	}
	d := &Dev{d: i2c.Dev{Bus: bus, Addr: addr}, opts: *opts}
	if err := d.SoftReset(); err != nil {
		return nil, err
	}
	if err := d.d.Tx(cmdHeaterOff, nil); err != nil {
		return nil, fmt.Errorf("sht3x: heater off: %w", err)
	}
	if _, err := d.Status(); err != nil {
		return nil, err
	}
	return d, nil
}

// String names the device.
func (d *Dev) String() string { return fmt.Sprintf("SHT3x{%s}", &d.d) }

// Sense takes one single-shot measurement and sets e.Temperature and
// e.Humidity; e.Pressure is left zero.
func (d *Dev) Sense(e *physic.Env) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.d.Tx(cmdMeasure[d.opts.Repeatability], nil); err != nil {
		return fmt.Errorf("sht3x: start measurement: %w", err)
	}
	time.Sleep(measureTime[d.opts.Repeatability])
	var raw [6]byte
	if err := d.d.Tx(nil, raw[:]); err != nil {
		return fmt.Errorf("sht3x: read measurement: %w", err)
	}
	t, h, err := Decode(raw[:])
	if err != nil {
		return err
	}
	e.Temperature, e.Humidity, e.Pressure = t, h, 0
	return nil
}

// Decode converts a 6-byte measurement (temperature word, CRC, humidity
// word, CRC) to temperature and relative humidity.
func Decode(raw []byte) (physic.Temperature, physic.RelativeHumidity, error) {
	t, rh, err := sensirion.Measurement(raw)
	if err != nil {
		return 0, 0, err
	}
	// RH = 100 % × raw / 65535, in tenth-micro-RH units.
	return t, physic.RelativeHumidity(int64(rh) * int64(100*physic.PercentRH) / 65535), nil
}

// Status reads the status register.
func (d *Dev) Status() (Status, error) {
	var raw [3]byte
	if err := d.d.Tx(cmdReadStatus, raw[:]); err != nil {
		return 0, fmt.Errorf("sht3x: read status: %w", err)
	}
	w, err := sensirion.Words(raw[:])
	if err != nil {
		return 0, fmt.Errorf("sht3x: status: %w", err)
	}
	return Status(w[0]), nil
}

// ClearStatus clears the alert and reset flags of the status register.
func (d *Dev) ClearStatus() error {
	if err := d.d.Tx(cmdClearStatus, nil); err != nil {
		return fmt.Errorf("sht3x: clear status: %w", err)
	}
	return nil
}

// SoftReset reloads the sensor's calibration and defaults (heater off); it
// takes at most 1.5 ms.
func (d *Dev) SoftReset() error {
	if err := d.d.Tx(cmdSoftReset, nil); err != nil {
		return fmt.Errorf("sht3x: soft reset: %w", err)
	}
	time.Sleep(2 * time.Millisecond)
	return nil
}

// Halt does nothing: in single-shot mode the sensor idles between readings.
func (d *Dev) Halt() error { return nil }

// Precision reports the datasheet's typical accuracy of the SHT31
// (±0.2 °C, ±2 %RH).
func (d *Dev) Precision(e *physic.Env) {
	e.Temperature = 200 * physic.MilliKelvin
	e.Humidity = 2 * physic.PercentRH
	e.Pressure = 0
}
