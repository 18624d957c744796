package store

import (
	"errors"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestSaveDeviceCreatesOnlyWhatIsNotFound: a PUT treated any read error as
// "new device" and reset its password. Only a missing record is new; a
// record that cannot be read is an error and stays as it is.
func TestSaveDeviceCreatesOnlyWhatIsNotFound(t *testing.T) {
	s := mustOpen(t, Options{})
	created, err := s.SaveDevice("esp-1", func(d *Device, exists bool) error {
		if exists {
			t.Error("a missing device exists")
		}
		d.PasswordHash, d.Messages = []byte("h1"), 7
		return nil
	})
	if err != nil || !created {
		t.Fatalf("create: %v created=%v", err, created)
	}
	created, err = s.SaveDevice("esp-1", func(d *Device, exists bool) error {
		if !exists || string(d.PasswordHash) != "h1" || d.Messages != 7 {
			t.Errorf("stored device %+v exists=%v: want what was saved", d, exists)
		}
		d.Name = "shed"
		return nil
	})
	if err != nil || created {
		t.Fatalf("replace: %v created=%v", err, created)
	}
	if d, _ := s.Device("esp-1"); d.Name != "shed" || d.Messages != 7 {
		t.Errorf("after replace: %+v", d)
	}
	refuse := errors.New("refused")
	if _, err := s.SaveDevice("esp-2", func(*Device, bool) error { return refuse }); !errors.Is(err, refuse) {
		t.Errorf("a refusing fn: %v", err)
	}
	if _, err := s.Device("esp-2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused save wrote a device: %v", err)
	}
	if err := s.update(func(tx *bolt.Tx) error { return tx.Bucket(bDevices).Put([]byte("esp-3"), []byte("{not json")) }); err != nil {
		t.Fatal(err)
	}
	_, err = s.SaveDevice("esp-3", func(*Device, bool) error {
		t.Error("fn called for a record that cannot be read")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("a corrupt record: %v, want an error naming it", err)
	}
	if err := s.DeleteDevice("esp-1", func(Device) error { return refuse }); !errors.Is(err, refuse) {
		t.Errorf("a refused delete: %v", err)
	}
	if _, err := s.Device("esp-1"); err != nil {
		t.Errorf("a refused delete deleted: %v", err)
	}
}
