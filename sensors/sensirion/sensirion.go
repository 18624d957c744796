// Package sensirion holds what Sensirion's humidity sensors (SHT3x, SHT4x)
// share: the CRC-8 that protects every 16-bit word they send, and the
// conversion of raw words to physical units.
//
// CRC: polynomial 0x31 (x^8 + x^5 + x^4 + 1), initialisation 0xFF, no
// reflection, no final XOR; test vector 0xBEEF → 0x92 (SHT3x datasheet §4.12).
package sensirion

import (
	"fmt"

	"periph.io/x/conn/v3/physic"
)

// CRC8 returns the Sensirion CRC-8 of data.
func CRC8(data []byte) byte {
	crc := byte(0xFF)
	for _, b := range data {
		crc ^= b
		for range 8 {
			if crc&0x80 != 0 {
				crc = crc<<1 ^ 0x31
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// CRCError reports a word whose checksum did not match: noise on the bus, a
// loose wire, or a wet sensor.
type CRCError struct {
	Word       uint16
	Got, Want  byte
	WordOffset int
}

// Error describes the mismatch.
func (e *CRCError) Error() string {
	return fmt.Sprintf("sensirion: CRC mismatch in word %d (0x%04X): got 0x%02X, want 0x%02X", e.WordOffset, e.Word, e.Got, e.Want)
}

// Words checks and decodes b, a sequence of 3-byte groups (16-bit word, big
// endian, then its CRC), into words.
func Words(b []byte) ([]uint16, error) {
	if len(b)%3 != 0 {
		return nil, fmt.Errorf("sensirion: %d bytes is not a whole number of words", len(b))
	}
	out := make([]uint16, len(b)/3)
	for i := range out {
		g := b[3*i : 3*i+3]
		w := uint16(g[0])<<8 | uint16(g[1])
		if want := CRC8(g[:2]); g[2] != want {
			return nil, &CRCError{Word: w, Got: g[2], Want: want, WordOffset: i}
		}
		out[i] = w
	}
	return out, nil
}

// Measurement checks a 6-byte temperature/humidity frame (temperature word,
// CRC, humidity word, CRC), the answer of both SHT3x and SHT4x, and returns
// the converted temperature and the raw humidity word, whose formula differs
// between the two chips.
func Measurement(raw []byte) (physic.Temperature, uint16, error) {
	if len(raw) != 6 {
		return 0, 0, fmt.Errorf("sensirion: measurement of %d bytes, want 6", len(raw))
	}
	w, err := Words(raw)
	if err != nil {
		return 0, 0, err
	}
	return Temperature(w[0]), w[1], nil
}

// Temperature converts a raw temperature word: T = -45 °C + 175 °C × raw / 65535,
// the same formula for SHT3x and SHT4x.
func Temperature(raw uint16) physic.Temperature {
	// Work in nano-kelvin integers to stay exact: 175 °C / 65535 per count.
	nk := int64(raw) * 175_000_000_000 / 65535
	return physic.ZeroCelsius - 45*physic.Celsius + physic.Temperature(nk)
}
