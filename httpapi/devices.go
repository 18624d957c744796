package httpapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"fieldgate/store"
	"fieldgate/store/credentials"
)

type deviceBody struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Admin     bool      `json:"admin"`
	CreatedAt time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	Online    bool      `json:"online"`
	Messages  uint64    `json:"messages"`
	Readings  uint64    `json:"readings"`
	Rejected  uint64    `json:"rejected"`
	LastError string    `json:"last_error,omitempty"`
	// State is waiting, ok, late or silent: whether readings arrive when
	// expected (see deviceState); StateReason says so in words.
	State          string    `json:"state"`
	StateReason    string    `json:"state_reason"`
	LastReading    time.Time `json:"last_reading,omitzero"`
	ReportInterval float64   `json:"report_interval_seconds,omitempty"`
	// Password is set only in the answer that generated it.
	Password string `json:"password,omitempty"`
	// Source links the device's readings.
	Source string `json:"source"`
}

func deviceView(d store.Device, now time.Time) deviceBody {
	state, why := deviceState(d, now)
	return deviceBody{ID: d.ID, Name: d.Name, Admin: d.Admin, CreatedAt: d.CreatedAt.UTC(), LastSeen: d.LastSeen.UTC(),
		Online: d.Online, Messages: d.Messages, Readings: d.Readings, Rejected: d.Rejected, LastError: d.LastError,
		State: state, StateReason: why, LastReading: d.LastReading.UTC(), ReportInterval: d.ReportInterval.Seconds(),
		Source: "/api/v1/sources/" + d.ID}
}

// devices returns every device as of now (see Broker.LiveDevice).
func (s *Server) devices() ([]store.Device, error) {
	devs, err := s.st.Devices()
	if s.deps.Broker != nil {
		for i := range devs {
			devs[i] = s.deps.Broker.LiveDevice(devs[i])
		}
	}
	return devs, err
}

func (s *Server) listDevices(c *gin.Context) {
	devs, err := s.devices()
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]deviceBody, 0, len(devs))
	for _, d := range devs {
		out = append(out, deviceView(d, s.opts.Now()))
	}
	reply(c, http.StatusOK, cacheRevalidate, map[string]any{"devices": out})
}

func (s *Server) getDevice(c *gin.Context) {
	d, err := s.st.Device(c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	if s.deps.Broker != nil {
		d = s.deps.Broker.LiveDevice(d)
	}
	reply(c, http.StatusOK, cacheRevalidate, deviceView(d, s.opts.Now()))
}

type deviceRequest struct {
	Name  *string `json:"name"`
	Admin *bool   `json:"admin"`
	// ResetPassword generates a new password (PATCH; a PUT that creates a
	// device always does).
	ResetPassword bool `json:"reset_password"`
}

func (r *deviceRequest) validate() error {
	var bad invalid
	if r.Name != nil && len(*r.Name) > 128 {
		bad.add("name", "must be at most 128 characters")
	}
	return bad.err()
}

// deviceInput reads and checks a device request and, when it asks for
// one, makes the new password (outside any transaction: bcrypt is slow).
// On failure it has answered and ok is false.
func (s *Server) deviceInput(c *gin.Context) (req deviceRequest, shown string, hash []byte, ok bool) {
	err := decode(c, &req)
	if err == nil {
		err = req.validate()
	}
	if err == nil && req.ResetPassword {
		shown, hash, err = credentials.NewPassword()
	}
	if err != nil {
		s.fail(c, err)
		return req, "", nil, false
	}
	return req, shown, hash, true
}

// putDevice creates (201, with a generated password shown once) or replaces
// (200, password kept unless reset_password) a device.
func (s *Server) putDevice(c *gin.Context) {
	id := c.Param("id")
	if err := s.deps.ValidateDeviceID(id); err != nil {
		s.fail(c, errorf(http.StatusBadRequest, "%v", err))
		return
	}
	req, shown, hash, ok := s.deviceInput(c)
	if !ok {
		return
	}
	admin := who(c).Role >= RoleAdmin
	var d store.Device
	save := func(x *store.Device, exists bool) error {
		if err := mayChangeAdmin(admin, *x, req.Admin); err != nil {
			return err
		}
		if !exists {
			if hash == nil {
				return errNeedPassword // made outside the transaction: bcrypt is slow
			}
			x.CreatedAt = s.opts.Now().UTC()
		}
		x.Name, x.Admin = "", false // PUT replaces: absent fields take their defaults
		if req.Name != nil {
			x.Name = *req.Name
		}
		if req.Admin != nil {
			x.Admin = *req.Admin
		}
		if !exists || req.ResetPassword {
			x.PasswordHash = hash
		}
		d = *x
		return nil
	}
	created, err := s.st.SaveDevice(id, save)
	if errors.Is(err, errNeedPassword) {
		if shown, hash, err = credentials.NewPassword(); err != nil {
			s.fail(c, err)
			return
		}
		created, err = s.st.SaveDevice(id, save)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	if !created && !req.ResetPassword {
		shown = "" // created by another request meanwhile: its password stands
	}
	if shown != "" && !created {
		s.disconnect(id) // the old password no longer works
	}
	out := deviceView(d, s.opts.Now())
	out.Password = shown
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		c.Header("Location", "/api/v1/devices/"+id)
	}
	s.log.Info("api device saved", "device", id, "created", created, "by", who(c).User)
	reply(c, status, cachePrivate, out)
}

func (s *Server) patchDevice(c *gin.Context) {
	req, shown, hash, ok := s.deviceInput(c)
	if !ok {
		return
	}
	var d store.Device
	admin := who(c).Role >= RoleAdmin
	err := s.st.UpdateDevice(c.Param("id"), func(x *store.Device) error {
		if err := mayChangeAdmin(admin, *x, req.Admin); err != nil {
			return err
		}
		if req.Name != nil {
			x.Name = *req.Name
		}
		if req.Admin != nil {
			x.Admin = *req.Admin
		}
		if hash != nil {
			x.PasswordHash = hash
		}
		d = *x
		return nil
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	if hash != nil || req.Admin != nil {
		s.disconnect(d.ID) // new credentials or rights apply from the next session
	}
	out := deviceView(d, s.opts.Now())
	out.Password = shown
	reply(c, http.StatusOK, cachePrivate, out)
}

// deleteDevice removes a device and ends its session; its readings stay.
func (s *Server) deleteDevice(c *gin.Context) {
	id := c.Param("id")
	admin := who(c).Role >= RoleAdmin
	if err := s.st.DeleteDevice(id, func(d store.Device) error { return mayChangeAdmin(admin, d, nil) }); err != nil {
		s.fail(c, err)
		return
	}
	if s.deps.Broker != nil {
		s.deps.Broker.Removed(id)
	}
	s.log.Info("api device removed", "device", id, "by", who(c).User)
	c.Status(http.StatusNoContent)
}

// errNeedPassword asks putDevice for a password before creating a device.
var errNeedPassword = errors.New("a new device needs a password")

// mayChangeAdmin refuses a caller who is not an admin any change to an
// admin device, and making a device admin: admin devices may publish
// commands to every device and read $SYS, more than a technician may.
func mayChangeAdmin(callerIsAdmin bool, d store.Device, wantAdmin *bool) error {
	if callerIsAdmin || (!d.Admin && (wantAdmin == nil || !*wantAdmin)) {
		return nil
	}
	return errorf(http.StatusForbidden, "only an admin may create, change or remove an admin device")
}

func (s *Server) disconnect(id string) {
	if s.deps.Broker != nil {
		s.deps.Broker.Disconnect(id)
	}
}
