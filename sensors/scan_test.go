package sensors

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"periph.io/x/conn/v3/physic"
)

// fakeBus answers at the addresses of its chips; each chip maps a written
// command to the bytes it answers. A command it does not know is NACKed, as
// real chips do; a plain read of an address with a chip answers 0x00.
type fakeBus struct {
	mu      sync.Mutex
	chips   map[uint16]map[string][]byte
	pending map[uint16][]byte // answer to a command sent without a read
}

var errNACK = errors.New("i2c: NACK")

func (b *fakeBus) Tx(addr uint16, w, r []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	chip, ok := b.chips[addr]
	if !ok {
		return errNACK
	}
	if len(w) == 0 {
		if ans, ok := b.pending[addr]; ok && len(ans) == len(r) {
			copy(r, ans)
			delete(b.pending, addr)
			return nil
		}
		clear(r)
		return nil
	}
	ans, ok := chip[fmt.Sprintf("% X", w)]
	if !ok {
		return errNACK
	}
	if len(r) == 0 {
		if b.pending == nil {
			b.pending = map[uint16][]byte{}
		}
		b.pending[addr] = ans
		return nil
	}
	if len(ans) != len(r) {
		return fmt.Errorf("fake: answer of %d bytes to a read of %d", len(ans), len(r))
	}
	copy(r, ans)
	return nil
}

func (b *fakeBus) SetSpeed(physic.Frequency) error { return nil }
func (b *fakeBus) String() string                  { return "fake" }

func TestScanIdentifiesChips(t *testing.T) {
	bus := &fakeBus{chips: map[uint16]map[string][]byte{
		0x38: {},                                           // an AHT20: no ID register
		0x44: {"F3 2D": {0x00, 0x00, 0x81}},                // SHT3x status register
		0x45: {"89": {0x12, 0x34, 0x37, 0x56, 0x78, 0x7D}}, // SHT4x serial number
		0x46: {"37 81": {0x30, 0x00, 0x4C}},                // HDC302x manufacturer id, corrupted CRC
		0x47: {"37 81": {0x30, 0x00, 0x33}},                // HDC302x manufacturer id
		0x48: {},                                           // TMP102: by address only
		0x50: {},                                           // an EEPROM fieldgate has no driver for
		0x76: {"D0": {0x60}},                               // BME280 chip id
		0x18: {"06": {0x00, 0x54}},                         // MCP9808 manufacturer id
	}}
	got := Scan(bus)
	want := []Found{
		{Addr: 0x18, Identified: "mcp9808", Candidates: []string{"mcp9808"}},
		{Addr: 0x38, Candidates: []string{"aht20"}},
		{Addr: 0x44, Identified: "sht3x", Candidates: []string{"hdc302x", "sht3x", "sht4x"}},
		{Addr: 0x45, Identified: "sht4x", Candidates: []string{"hdc302x", "sht3x", "sht4x"}},
		{Addr: 0x46, Candidates: []string{"hdc302x", "sht4x"}},
		{Addr: 0x47, Identified: "hdc302x", Candidates: []string{"hdc302x"}},
		{Addr: 0x48, Candidates: []string{"tmp102"}},
		{Addr: 0x50},
		{Addr: 0x76, Identified: "bme280", Candidates: []string{"bme280"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Scan:\n got %+v\nwant %+v", got, want)
	}
}

func TestScanEmptyBus(t *testing.T) {
	if got := Scan(&fakeBus{}); len(got) != 0 {
		t.Fatalf("Scan of an empty bus: %+v", got)
	}
}
