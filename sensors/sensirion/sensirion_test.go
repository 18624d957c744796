package sensirion

import (
	"errors"
	"testing"
)

func TestCRC8DatasheetVector(t *testing.T) {
	if got := CRC8([]byte{0xBE, 0xEF}); got != 0x92 {
		t.Fatalf("CRC8(0xBEEF) = 0x%02X, want 0x92", got)
	}
}

func TestWords(t *testing.T) {
	w, err := Words([]byte{0xBE, 0xEF, 0x92, 0x00, 0x00, 0x81})
	if err != nil || len(w) != 2 || w[0] != 0xBEEF || w[1] != 0 {
		t.Fatalf("Words = %v, %v", w, err)
	}
	_, err = Words([]byte{0xBE, 0xEF, 0x92, 0x12, 0x34, 0x00})
	var ce *CRCError
	if !errors.As(err, &ce) || ce.WordOffset != 1 || ce.Word != 0x1234 {
		t.Fatalf("bad CRC in word 1: %v", err)
	}
	if _, err := Words([]byte{1, 2}); err == nil {
		t.Fatal("a partial word was accepted")
	}
}

func TestTemperature(t *testing.T) {
	for raw, want := range map[uint16]float64{0: -45, 65535: 130, 0x6666: 25.0} {
		got := Temperature(raw).Celsius()
		if diff := got - want; diff > 0.01 || diff < -0.01 {
			t.Errorf("Temperature(0x%04X) = %.3f °C, want %.3f", raw, got, want)
		}
	}
}
