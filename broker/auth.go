package broker

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"fieldgate/store"
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

// NewPassword returns a random password (130 bits, 26 characters, no
// characters that confuse people or shells) and its bcrypt hash.
func NewPassword() (password string, hash []byte, err error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	password = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
	hash, err = bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	return password, hash, err
}

// DeviceStore is what authentication needs of the store.
type DeviceStore interface {
	Device(id string) (store.Device, error)
}

// authenticator checks device credentials against the store. A bcrypt check
// costs ~50 ms here and far more on a Pi Zero, so a successful check is
// remembered (a SHA-256 of the password, against the hash it matched) and
// a fleet reconnecting after a Wi-Fi outage costs one bcrypt per device.
// One bcrypt runs at a time, so guessing cannot take every core; an unknown
// device costs one too, against a dummy hash, so that the time of a
// refusal does not tell which device ids exist.
type authenticator struct {
	st    DeviceStore
	sem   chan struct{}
	mu    sync.Mutex
	cache map[string]authEntry
}

type authEntry struct {
	hash []byte   // the bcrypt hash that was checked
	sum  [32]byte // SHA-256 of the password that matched it
}

func newAuthenticator(st DeviceStore) *authenticator {
	return &authenticator{st: st, sem: make(chan struct{}, 1), cache: map[string]authEntry{}}
}

// errBusy refuses a login that waited too long for its turn at bcrypt.
var errBusy = errors.New("too many logins at once; try again")

// bcryptWait bounds how long a login waits for its turn at bcrypt.
const bcryptWait = 5 * time.Second

// compare runs one bcrypt comparison when its turn comes.
func (a *authenticator) compare(hash, password []byte) error {
	t := time.NewTimer(bcryptWait)
	defer t.Stop()
	select {
	case a.sem <- struct{}{}:
	case <-t.C:
		return errBusy
	}
	defer func() { <-a.sem }()
	return bcrypt.CompareHashAndPassword(hash, password)
}

// dummyHash stands in for an unknown device's hash, made on first use.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("fieldgate dummy device password"), bcrypt.DefaultCost) // fails only beyond 72 bytes
	return h
})

// errBadCredentials is the one answer for an unknown device and a wrong
// password, so that device ids cannot be probed.
var errBadCredentials = errors.New("bad username or password")

// check returns the device if user and password match one.
func (a *authenticator) check(user string, password []byte) (store.Device, error) {
	d, err := a.st.Device(user)
	if errors.Is(err, store.ErrNotFound) || (err == nil && len(d.PasswordHash) == 0) {
		if err := a.compare(dummyHash(), password); errors.Is(err, errBusy) {
			return store.Device{}, err
		}
		return store.Device{}, errBadCredentials
	}
	if err != nil {
		return store.Device{}, err
	}
	sum := sha256.Sum256(password)
	a.mu.Lock()
	e, ok := a.cache[user]
	a.mu.Unlock()
	if ok && subtle.ConstantTimeCompare(e.hash, d.PasswordHash) == 1 && subtle.ConstantTimeCompare(e.sum[:], sum[:]) == 1 {
		return d, nil
	}
	if err := a.compare(d.PasswordHash, password); errors.Is(err, errBusy) {
		return store.Device{}, err
	} else if err != nil {
		return store.Device{}, errBadCredentials
	}
	a.mu.Lock()
	a.cache[user] = authEntry{hash: d.PasswordHash, sum: sum}
	a.mu.Unlock()
	return d, nil
}
