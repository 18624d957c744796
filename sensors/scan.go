package sensors

import (
	"slices"
	"time"

	"fieldgate/sensors/sensirion"

	"periph.io/x/conn/v3/i2c"
)

// Found is an address that answered a scan.
type Found struct {
	Addr uint16
	// Identified names the driver whose ID register confirmed the chip, or
	// is empty when the chip has no ID to read (or none matched).
	Identified string
	// Candidates are the drivers whose chip can answer at this address.
	Candidates []string
}

// Scan probes every 7-bit address from 0x03 to 0x77 on bus with a one-byte
// read (as i2cdetect -r does; reads change no chip's state) and, for each
// that answers, lists the supported chips that use that address and tries
// their ID reads. An AM2320 sleeps between readings and may not answer.
func Scan(bus i2c.Bus) []Found {
	var out []Found
	var b [1]byte
	for addr := uint16(0x03); addr <= 0x77; addr++ {
		if bus.Tx(addr, nil, b[:]) != nil {
			continue
		}
		f := Found{Addr: addr}
		for _, name := range DriverNames() {
			d := drivers[name]
			if !slices.Contains(d.Addrs, addr) {
				continue
			}
			f.Candidates = append(f.Candidates, name)
			if f.Identified == "" && d.identify != nil && d.identify(bus, addr) {
				f.Identified = name
			}
		}
		out = append(out, f)
	}
	return out
}

// identifySHT3x reads the status register: a valid CRC means an SHT3x.
func identifySHT3x(bus i2c.Bus, addr uint16) bool {
	var r [3]byte
	if bus.Tx(addr, []byte{0xF3, 0x2D}, r[:]) != nil {
		return false
	}
	_, err := sensirion.Words(r[:])
	return err == nil
}

// identifySHT4x reads the serial number: two words with valid CRCs.
func identifySHT4x(bus i2c.Bus, addr uint16) bool {
	if bus.Tx(addr, []byte{0x89}, nil) != nil {
		return false
	}
	time.Sleep(time.Millisecond)
	var r [6]byte
	if bus.Tx(addr, nil, r[:]) != nil {
		return false
	}
	_, err := sensirion.Words(r[:])
	return err == nil
}

// identifyHDC302x reads the manufacturer id, 0x3000 for Texas Instruments.
func identifyHDC302x(bus i2c.Bus, addr uint16) bool {
	var r [3]byte
	if bus.Tx(addr, []byte{0x37, 0x81}, r[:]) != nil {
		return false
	}
	w, err := sensirion.Words(r[:]) // the HDC302x uses the same CRC-8
	return err == nil && w[0] == 0x3000
}

// identifyBME280 reads the chip id register: 0x60 BME280, 0x58 BMP280.
func identifyBME280(bus i2c.Bus, addr uint16) bool {
	var r [1]byte
	return bus.Tx(addr, []byte{0xD0}, r[:]) == nil && (r[0] == 0x60 || r[0] == 0x58)
}

// identifyMCP9808 reads the manufacturer id register, 0x0054 for Microchip.
func identifyMCP9808(bus i2c.Bus, addr uint16) bool {
	var r [2]byte
	return bus.Tx(addr, []byte{0x06}, r[:]) == nil && r[0] == 0x00 && r[1] == 0x54
}
