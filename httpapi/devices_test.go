package httpapi

import (
	"testing"
)

// TestOnlyAdminsTouchAdminDevices: a technician could create an admin MQTT
// device — one that may publish commands to every device and read $SYS.
// Making, changing, re-keying or removing an admin device is for admins.
func TestOnlyAdminsTouchAdminDevices(t *testing.T) {
	e := newEnv(t, Options{})
	device := func(method, id string, role Role, body map[string]any) int {
		return e.do(req{method: method, path: "/api/v1/devices/" + id, body: body, role: role}).StatusCode
	}
	admin := map[string]any{"admin": true}
	if code := device("PUT", "cmd-1", RoleTechnician, admin); code != 403 {
		t.Errorf("technician creates an admin device: %d, want 403", code)
	}
	if code := device("PUT", "esp-1", RoleTechnician, map[string]any{"name": "shed"}); code != 201 {
		t.Fatalf("technician creates a device: %d", code)
	}
	if code := device("PATCH", "esp-1", RoleTechnician, admin); code != 403 {
		t.Errorf("technician makes a device admin: %d, want 403", code)
	}
	if code := device("PUT", "cmd-1", RoleAdmin, admin); code != 201 {
		t.Fatalf("admin creates an admin device: %d", code)
	}
	before, err := e.st.Device("cmd-1")
	if err != nil {
		t.Fatal(err)
	}
	for name, code := range map[string]int{
		"re-key":  device("PATCH", "cmd-1", RoleTechnician, map[string]any{"reset_password": true}),
		"replace": device("PUT", "cmd-1", RoleTechnician, map[string]any{"name": "mine now"}),
		"demote":  device("PATCH", "cmd-1", RoleTechnician, map[string]any{"admin": false}),
		"remove":  device("DELETE", "cmd-1", RoleTechnician, nil),
	} {
		if code != 403 {
			t.Errorf("technician may %s an admin device: %d, want 403", name, code)
		}
	}
	after, err := e.st.Device("cmd-1")
	if err != nil || !after.Admin || string(after.PasswordHash) != string(before.PasswordHash) || after.Name != "" {
		t.Errorf("admin device after the technician's attempts: %+v, %v", after, err)
	}
	if code := device("DELETE", "cmd-1", RoleAdmin, nil); code != 204 {
		t.Errorf("admin removes an admin device: %d", code)
	}
}
