package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"fieldgate/cmd/fieldgate/daemontest"
	"fieldgate/sensors"
)

func TestWriteScan(t *testing.T) {
	var out bytes.Buffer
	err := writeScan(&out, []busScan{{Bus: 1, Found: []sensors.Found{
		{Addr: 0x44, Identified: "sht3x", Candidates: []string{"hdc302x", "sht3x", "sht4x"}},
		{Addr: 0x45, Candidates: []string{"hdc302x", "sht3x", "sht4x"}},
		{Addr: 0x48, Candidates: []string{"tmp102"}},
		{Addr: 0x50},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	want := `bus 1 (/dev/i2c-1): 4 address(es) answer
  0x44  sht3x — Sensirion SHT30/SHT31/SHT35 (confirmed by its ID)
  0x45  one of hdc302x, sht3x or sht4x (by address; no ID confirmed)
  0x48  tmp102 — TI TMP102 (by address; no ID register to confirm)
  0x50  unknown: no supported sensor uses this address

# Paste under sensors: in /etc/fieldgate/config.yaml, then run fieldgate check-config.
sensors:
  - name: sht3x-1-44
    driver: sht3x
    bus: 1
    address: 0x44
    interval: 10s
  # 0x45 on bus 1 could be hdc302x, sht3x or sht4x: keep the driver that matches the board
  - name: hdc302x-1-45
    driver: hdc302x
    bus: 1
    address: 0x45
    interval: 10s
  - name: tmp102-1-48
    driver: tmp102
    bus: 1
    address: 0x48
    interval: 10s
`
	if out.String() != want {
		t.Fatalf("scan output:\n%s\nwant:\n%s", out.String(), want)
	}
	// The snippet is a valid configuration.
	snippet := want[strings.Index(want, "\nsensors:\n"):]
	if _, err := loadConfig(daemontest.WriteConfig(t, snippet), true, envMap(nil), laptop); err != nil {
		t.Fatalf("the printed snippet does not load: %v", err)
	}
}

func TestScanWithoutABus(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"fieldgate", "scan", "-bus", "97"}, envMap(nil), &bytes.Buffer{}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "/dev/i2c-97 does not exist") || !strings.Contains(err.Error(), "enable I2C") {
		t.Fatalf("scan of a missing bus: %v", err)
	}
	if len(sensors.HostBuses()) > 0 {
		return // this machine has a bus; the no-bus message cannot be shown here
	}
	err = run(context.Background(), []string{"fieldgate", "scan"}, envMap(nil), &bytes.Buffer{}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "no I2C bus found") {
		t.Fatalf("scan without any bus: %v", err)
	}
}
