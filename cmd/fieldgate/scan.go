package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"fieldgate/sensors"
)

// busScan is what answered on one bus.
type busScan struct {
	Bus   int
	Found []sensors.Found
}

// scan lists, for each I²C bus, the addresses that answer and the chip each
// probably is, then prints a configuration snippet ready to paste.
func scan(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fieldgate scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	only := fs.Int("bus", -1, "scan only this bus number (default: every /dev/i2c-*)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	nums := sensors.HostBuses()
	if *only >= 0 {
		nums = []int{*only}
	}
	if len(nums) == 0 {
		return errors.New("no I2C bus found (/dev/i2c-* does not exist); on a Raspberry Pi enable I2C (sudo raspi-config → Interface Options → I2C, or dtparam=i2c_arm=on in /boot/firmware/config.txt) and reboot")
	}
	var results []busScan
	var errs []error
	for _, n := range nums {
		bus, err := sensors.OpenHostBus(n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		results = append(results, busScan{Bus: n, Found: sensors.Scan(bus)})
		if err := bus.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close bus %d: %w", n, err))
		}
	}
	if err := writeScan(stdout, results); err != nil {
		return err
	}
	if len(results) == 0 {
		return errors.Join(errs...)
	}
	for _, err := range errs {
		fmt.Fprintln(stderr, "fieldgate scan:", err)
	}
	return nil
}

// writeScan prints the scan results and a sensors: snippet for the chips found.
func writeScan(w io.Writer, results []busScan) error {
	var b, snippet strings.Builder
	for _, r := range results {
		fmt.Fprintf(&b, "bus %d (/dev/i2c-%d): %d address(es) answer\n", r.Bus, r.Bus, len(r.Found))
		for _, f := range r.Found {
			fmt.Fprintf(&b, "  0x%02X  %s\n", f.Addr, describe(f))
			if len(f.Candidates) == 0 {
				continue
			}
			driver := f.Identified
			if driver == "" {
				driver = f.Candidates[0]
				if len(f.Candidates) > 1 {
					fmt.Fprintf(&snippet, "  # 0x%02X on bus %d could be %s: keep the driver that matches the board\n", f.Addr, r.Bus, orList(f.Candidates))
				}
			}
			fmt.Fprintf(&snippet, "  - name: %s-%d-%02x\n    driver: %s\n    bus: %d\n    address: 0x%02X\n    interval: 10s\n",
				driver, r.Bus, f.Addr, driver, r.Bus, f.Addr)
		}
	}
	if snippet.Len() > 0 {
		b.WriteString("\n# Paste under sensors: in /etc/fieldgate/config.yaml, then run fieldgate check-config.\nsensors:\n")
		b.WriteString(snippet.String())
	} else {
		b.WriteString("\nNo supported sensor answered. Check the wiring (SDA, SCL, 3.3 V, GND); an AM2320 sleeps and may not answer a scan.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func describe(f sensors.Found) string {
	switch {
	case f.Identified != "":
		d, _ := sensors.LookupDriver(f.Identified)
		return fmt.Sprintf("%s — %s (confirmed by its ID)", f.Identified, d.Chip)
	case len(f.Candidates) == 1:
		d, _ := sensors.LookupDriver(f.Candidates[0])
		return fmt.Sprintf("%s — %s (by address; no ID register to confirm)", f.Candidates[0], d.Chip)
	case len(f.Candidates) > 1:
		return "one of " + orList(f.Candidates) + " (by address; no ID confirmed)"
	default:
		return "unknown: no supported sensor uses this address"
	}
}

// orList writes "a, b or c".
func orList(s []string) string {
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
