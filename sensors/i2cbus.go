package sensors

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/host/v3/sysfs"
)

// ErrNoBus is returned when an I²C bus does not exist on this machine.
var ErrNoBus = errors.New("no such I2C bus")

// OpenHostBus opens /dev/i2c-n through the kernel's i2c-dev interface, with
// an error that says how to fix the two common problems: I²C not enabled,
// and a user without access to the device.
func OpenHostBus(n int) (i2c.BusCloser, error) {
	path := "/dev/i2c-" + strconv.Itoa(n)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: %s does not exist; on a Raspberry Pi enable I2C (sudo raspi-config → Interface Options → I2C, or dtparam=i2c_arm=on in /boot/firmware/config.txt) and reboot", ErrNoBus, path)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("%s: permission denied; add the user to the i2c group (sudo usermod -aG i2c $USER, then log in again) or run fieldgate as its systemd service", path)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	_ = f.Close() // only a check; periph opens its own handle
	bus, err := sysfs.NewI2C(n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return bus, nil
}

// HostBuses lists the numbers of the I²C buses this machine has.
func HostBuses() []int {
	paths, _ := filepath.Glob("/dev/i2c-*") // the pattern is valid
	var out []int
	for _, p := range paths {
		if n, err := strconv.Atoi(strings.TrimPrefix(p, "/dev/i2c-")); err == nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// Buses opens each bus once, on first use, and shares it among the sensors
// on it. A bus that failed to open is tried again on the next Get, so one
// that appears later (a USB adapter plugged in) is picked up.
type Buses struct {
	open  func(n int) (i2c.BusCloser, error)
	mu    sync.Mutex
	buses map[int]i2c.BusCloser
}

// NewBuses returns a Buses that opens buses with open (OpenHostBus on a
// real machine).
func NewBuses(open func(n int) (i2c.BusCloser, error)) *Buses {
	return &Buses{open: open, buses: map[int]i2c.BusCloser{}}
}

// Get returns bus n, opening it if needed.
func (b *Buses) Get(n int) (i2c.Bus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bus, ok := b.buses[n]; ok {
		return bus, nil
	}
	bus, err := b.open(n)
	if err != nil {
		return nil, err
	}
	b.buses[n] = bus
	return bus, nil
}

// Close closes every bus opened.
func (b *Buses) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for n, bus := range b.buses {
		if err := bus.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close /dev/i2c-%d: %w", n, err))
		}
		delete(b.buses, n)
	}
	return errors.Join(errs...)
}
