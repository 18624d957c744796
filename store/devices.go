package store

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Device is an MQTT node allowed to publish to the gateway.
type Device struct {
	// ID is the MQTT username and the source of the device's readings.
	ID string `json:"id"`
	// Name is a display name for technicians.
	Name string `json:"name"`
	// PasswordHash is the bcrypt hash of the device's password; the password
	// itself is never stored.
	PasswordHash []byte `json:"password_hash,omitempty"`
	// Admin devices may subscribe to anything, $SYS included, and publish
	// commands to other devices.
	Admin     bool      `json:"admin,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	Online    bool      `json:"online"`
	// Messages, Readings and Rejected count what the device published, what
	// was stored of it, and payloads refused as malformed.
	Messages  uint64 `json:"messages"`
	Readings  uint64 `json:"readings"`
	Rejected  uint64 `json:"rejected"`
	LastError string `json:"last_error,omitempty"`
	// LastReading is when the device's last reading was stored, and
	// ReportInterval how often it reports, learned from the gaps between
	// its messages (0 until two messages came). A node is judged by them —
	// readings arriving when expected — not by its session: a deep-sleep
	// node ends its session after every publish.
	LastReading    time.Time     `json:"last_reading,omitzero"`
	ReportInterval time.Duration `json:"report_interval,omitempty"`
	// IntervalSamples is how many gaps ReportInterval was learned from: a
	// node tried by hand with a few quick publishes says little yet.
	IntervalSamples int `json:"interval_samples,omitempty"`
}

// PutDevice creates or replaces a device and reports whether it was created.
func (s *Store) PutDevice(d Device) (created bool, err error) {
	if d.ID == "" || len(d.ID) > MaxSourceLen {
		return false, fmt.Errorf("store: device id must be 1 to %d bytes", MaxSourceLen)
	}
	err = s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bDevices)
		created = b.Get([]byte(d.ID)) == nil
		return putJSON(b, d.ID, d)
	})
	return created, err
}

// SaveDevice creates or changes device id in one transaction: fn gets the
// stored device (exists true) or a new one with only its id (exists false,
// only when the store has no such device: any other read error is
// returned) and edits it; an error from fn aborts without a write.
func (s *Store) SaveDevice(id string, fn func(d *Device, exists bool) error) (created bool, err error) {
	if id == "" || len(id) > MaxSourceLen {
		return false, fmt.Errorf("store: device id must be 1 to %d bytes", MaxSourceLen)
	}
	err = s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bDevices)
		d, err := getDevice(b, id)
		exists := err == nil
		switch {
		case errors.Is(err, ErrNotFound):
			d = Device{ID: id}
		case err != nil:
			return err
		}
		if err := fn(&d, exists); err != nil {
			return err
		}
		d.ID, created = id, !exists
		return putJSON(b, id, d)
	})
	return created, err
}

// UpdateDevice applies fn to the stored device in one transaction.
func (s *Store) UpdateDevice(id string, fn func(*Device) error) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bDevices)
		d, err := getDevice(b, id)
		if err != nil {
			return err
		}
		if err := fn(&d); err != nil {
			return err
		}
		return putJSON(b, id, d)
	})
}

// UpdateDevices applies each fn to its stored device, all in one
// transaction (one commit for a whole fleet's activity counters). Devices
// that no longer exist are skipped.
func (s *Store) UpdateDevices(fns map[string]func(*Device)) error {
	if len(fns) == 0 {
		return nil
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bDevices)
		for id, fn := range fns {
			d, err := getDevice(b, id)
			if errors.Is(err, ErrNotFound) {
				continue // removed meanwhile: nothing to keep
			}
			if err != nil {
				return err
			}
			fn(&d)
			if err := putJSON(b, id, d); err != nil {
				return err
			}
		}
		return nil
	})
}

// Device returns the device with the given id, or ErrNotFound.
func (s *Store) Device(id string) (d Device, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		d, err = getDevice(tx.Bucket(bDevices), id)
		return err
	})
	return d, err
}

// Devices returns every device, sorted by id.
func (s *Store) Devices() ([]Device, error) {
	return listJSON[Device](s, bDevices, "device")
}

// DeleteDevice removes a device; its readings stay. ErrNotFound if absent.
// Each check, if any, sees the device first and may refuse the delete.
func (s *Store) DeleteDevice(id string, checks ...func(Device) error) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bDevices)
		d, err := getDevice(b, id)
		if err != nil {
			return err
		}
		for _, check := range checks {
			if err := check(d); err != nil {
				return err
			}
		}
		return b.Delete([]byte(id))
	})
}

func getDevice(b *bolt.Bucket, id string) (d Device, err error) {
	err = getJSON(b, "device", id, &d)
	return d, err
}
