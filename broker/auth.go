package broker

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"fieldgate/store"
	"fieldgate/store/credentials"
)

// DeviceIDPattern is what a device id (its MQTT username and source) may be.
var DeviceIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidateDeviceID explains why id cannot be a device id, or returns nil.
func ValidateDeviceID(id string) error {
	switch {
	case !DeviceIDPattern.MatchString(id):
		return fmt.Errorf("device id %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	case id == GatewayDevice:
		return fmt.Errorf("device id %q is reserved for the gateway's own topics", id)
	case reservedIDs[strings.ToLower(id)]:
		return fmt.Errorf("device id %q is reserved: it is the first level of common integration topics (Home Assistant, Tasmota, fieldgate)", id)
	}
	return nil
}

// reservedIDs are topic prefixes of integrations: a device named so would
// own their topics ({device}/… is a device's), such as every Tasmota
// node's telemetry under tele/.
var reservedIDs = map[string]bool{"homeassistant": true, "tele": true, "stat": true, "cmnd": true, "fieldgate": true, "gateway": true}

// DeviceStore is what authentication needs of the store.
type DeviceStore interface {
	Device(id string) (store.Device, error)
}

// authenticator checks device credentials against the store with the
// process's credentials.Checker: one bcrypt at a time, a fleet's
// reconnect costing one per device, an unknown device as much as a known
// one (so refusals do not tell which ids exist).
type authenticator struct {
	st DeviceStore
	c  *credentials.Checker
}

// errBadCredentials is the one answer for an unknown device and a wrong
// password, so that device ids cannot be probed.
var errBadCredentials = errors.New("bad username or password")

// check returns the device if user and password match one.
func (a *authenticator) check(user string, password []byte) (store.Device, error) {
	d, err := a.st.Device(user)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Device{}, err
	}
	switch err := a.c.Check("device:"+user, d.PasswordHash, string(password)); {
	case errors.Is(err, credentials.ErrMismatch):
		return store.Device{}, errBadCredentials
	case err != nil:
		return store.Device{}, err
	}
	return d, nil
}
