package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"fieldgate/store"
)

// Duration is a time.Duration written as "10s", "5m", "720h" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string, with a message naming the line.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return valueError(n, "%q is not a duration (write it like 500ms, 10s, 5m or 720h)", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// String formats the duration like time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// ByteSize is a size in bytes written as "512MiB", "1GiB", "64MB" or a plain
// number of bytes in YAML.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// parseByteSize parses "1.5GiB", "64 MB", "4096".
func parseByteSize(s string) (ByteSize, error) {
	num, mult := strings.TrimSpace(s), 1.0
	for _, u := range byteUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsInf(f*mult, 0) || f*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is not a size (write it like 512MiB, 1GiB or 64MB)", s)
	}
	return ByteSize(f * mult), nil
}

// UnmarshalYAML parses a size, with a message naming the line.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseByteSize(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return valueError(n, "%q is not a size (write it like 512MiB, 1GiB or 64MB)", n.Value)
	}
	*b = v
	return nil
}

// MarshalYAML writes the size in the largest binary unit that divides it.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// String formats the size as "1GiB", "512MiB" or "1500B".
func (b ByteSize) String() string { return store.FormatSize(int64(b)) }

// valueError says why node's value is wrong, as a *yaml.TypeError: yaml.v3
// then goes on decoding the rest and lists every such error at once.
func valueError(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: ", n.Line) + fmt.Sprintf(format, args...)}}
}
