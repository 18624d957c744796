package payload

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

var now = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func format(vs []Value) string {
	var b strings.Builder
	for _, v := range vs {
		t := "on receipt"
		if !v.Time.IsZero() {
			t = v.Time.UTC().Format(time.RFC3339Nano)
		}
		fmt.Fprintf(&b, "%s = %v %s @ %s\n", v.Quantity, v.Value, v.Unit, t)
	}
	return b.String()
}

// TestGolden decodes the payloads in testdata (RFC 8428's own examples, the
// SenML a batching firmware sends, and Tasmota messages as its docs show
// them) and compares with the .golden files.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatal("no test vectors", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			p, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var vs []Value
			if strings.HasPrefix(filepath.Base(f), "senml") {
				vs, err = SenML(p, now)
			} else {
				vs, err = Tasmota(p)
			}
			if err != nil {
				t.Fatal(err)
			}
			got := format(vs)
			golden := strings.TrimSuffix(f, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -update creates it)", err)
			}
			if got != string(want) {
				t.Errorf("decoded:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestNumber(t *testing.T) {
	for _, tc := range []struct {
		quantity, payload string
		want              Value
	}{
		{"temperature", "21.5", Value{Quantity: "temperature", Value: 21.5, Unit: "Cel"}},
		{"humidity", " 48\n", Value{Quantity: "humidity", Value: 48, Unit: "%RH"}},
		{"pressure", "1013.25", Value{Quantity: "pressure", Value: 101325, Unit: "Pa"}},
		{"co2", "612", Value{Quantity: "co2", Value: 612, Unit: "ppm"}},
		{"kitchen_temperature", "-3.5", Value{Quantity: "kitchen_temperature", Value: -3.5, Unit: "Cel"}},
		{"battery", "3.71", Value{Quantity: "battery", Value: 3.71}},
		// The Porch card showed a bare "3.30": every common quantity has its unit.
		{"voltage", "3.30", Value{Quantity: "voltage", Value: 3.3, Unit: "V"}},
		{"wifi_signal", "-67", Value{Quantity: "wifi_signal", Value: -67, Unit: "dBm"}},
		{"power", "12.5", Value{Quantity: "power", Value: 12.5, Unit: "W"}},
		{"pm25", "8", Value{Quantity: "pm25", Value: 8, Unit: "ug/m3"}},
	} {
		got, err := Number(tc.quantity, []byte(tc.payload))
		if err != nil || got != tc.want {
			t.Errorf("Number(%q, %q) = %+v, %v; want %+v", tc.quantity, tc.payload, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "nan", "NaN", "inf", "21,5", "twenty", "21.5 C", "{\"v\":1}"} {
		if _, err := Number("temperature", []byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Number(%q): %v, want ErrInvalid", bad, err)
		}
	}
}

func TestInvalidPacks(t *testing.T) {
	for name, p := range map[string]string{
		"not JSON":        "21.5",
		"object":          `{"n":"t","v":1}`,
		"no name":         `[{"v":1}]`,
		"no value":        `[{"n":"t"}]`,
		"only strings":    `[{"n":"status","vs":"ok"}]`,
		"value as string": `[{"n":"t","v":"1"}]`,
		"empty":           `[]`,
	} {
		if _, err := SenML([]byte(p), now); !errors.Is(err, ErrInvalid) {
			t.Errorf("SenML %s: %v, want ErrInvalid", name, err)
		}
	}
	for name, p := range map[string]string{
		"not JSON":           "ON",
		"no sensor":          `{"Time":"2021-01-01T00:00:00","Uptime":"1T00:00:00"}`,
		"temperature as str": `{"AM2301":{"Temperature":"21.5"}}`,
		"array":              `[1,2]`,
	} {
		if _, err := Tasmota([]byte(p)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Tasmota %s: %v, want ErrInvalid", name, err)
		}
	}
}

func FuzzSenML(f *testing.F) {
	for _, p := range []string{`[{"bn":"a:","bt":1.7e9,"n":"temp","u":"Cel","v":21.5},{"n":"hum","t":-5,"v":40}]`, `[{"n":"x","vs":"y"}]`} {
		f.Add([]byte(p))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		vs, err := SenML(p, now)
		checkValues(t, vs, err)
	})
}

func FuzzTasmota(f *testing.F) {
	f.Add([]byte(`{"Time":"2021-01-02T12:04:39","AM2301":{"Temperature":21.5,"Humidity":45.2},"TempUnit":"F"}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		vs, err := Tasmota(p)
		checkValues(t, vs, err)
	})
}

func FuzzNumber(f *testing.F) {
	f.Add("temperature", []byte("21.5"))
	f.Fuzz(func(t *testing.T, q string, p []byte) {
		v, err := Number(q, p)
		if err != nil {
			checkValues(t, nil, err)
			return
		}
		checkValues(t, []Value{v}, nil)
	})
}

// checkValues holds for every decoder: an error wraps ErrInvalid, and a
// success yields at least one finite value with a quantity.
func checkValues(t *testing.T, vs []Value, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v does not wrap ErrInvalid", err)
		}
		return
	}
	if len(vs) == 0 {
		t.Fatal("no error and no value")
	}
	for _, v := range vs {
		if v.Value != v.Value || v.Value > 1e308 || v.Value < -1e308 {
			t.Fatalf("non-finite value %+v", v)
		}
	}
}

// TestNumberAllocatesNothing: every plain publish takes this path.
func TestNumberAllocatesNothing(t *testing.T) {
	p := []byte(" 21.5\n")
	if n := testing.AllocsPerRun(100, func() {
		if _, err := Number("temperature", p); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per plain payload, want none", n)
	}
}
