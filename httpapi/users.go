package httpapi

import (
	"net/http"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"

	"fieldgate/store"
	"fieldgate/store/credentials"
)

// UserNamePattern is what a user name may look like.
var UserNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// MinPasswordLen is the shortest password the API accepts.
const MinPasswordLen = 10

type userBody struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	// Password is set only in the answer that generated it.
	Password string `json:"password,omitempty"`
}

func userView(u store.User) userBody {
	return userBody{Name: u.Name, Role: u.Role, CreatedAt: u.CreatedAt.UTC()}
}

func (s *Server) listUsers(c *gin.Context) {
	users, err := s.st.Users()
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]userBody, 0, len(users))
	for _, u := range users {
		out = append(out, userView(u))
	}
	reply(c, http.StatusOK, cachePrivate, map[string]any{"users": out})
}

func (s *Server) getUser(c *gin.Context) {
	u, err := s.st.User(c.Param("name"))
	if err != nil {
		s.fail(c, err)
		return
	}
	reply(c, http.StatusOK, cachePrivate, userView(u))
}

type userRequest struct {
	Role *string `json:"role"`
	// Password sets the password; empty in a PUT generates one.
	Password *string `json:"password"`
	// ResetPassword in a PATCH generates a new password.
	ResetPassword bool `json:"reset_password"`
}

// validate checks the fields present; put says every field is required
// except password.
func (r *userRequest) validate(put bool) (Role, error) {
	var bad invalid
	var role Role
	switch {
	case r.Role != nil:
		var ok bool
		if role, ok = ParseRole(*r.Role); !ok {
			bad.add("role", "must be viewer, technician or admin, not %q", *r.Role)
		}
	case put:
		bad.add("role", "is required")
	}
	if r.Password != nil && *r.Password != "" && len(*r.Password) < MinPasswordLen {
		bad.add("password", "must be at least %d characters (or leave it out to get a generated one)", MinPasswordLen)
	}
	if r.Password != nil && len(*r.Password) > 72 {
		bad.add("password", "must be at most 72 bytes")
	}
	if put && r.ResetPassword {
		bad.add("reset_password", "is for PATCH; a PUT without password generates one")
	}
	return role, bad.err()
}

// password returns the password to set: the given one, or a generated one
// that the answer shows once.
func password(given *string, generate bool) (plain string, shown string, hash []byte, err error) {
	switch {
	case given != nil && *given != "":
		hash, err = credentials.Hash(*given)
		return *given, "", hash, err
	case generate:
		plain, hash, err = credentials.NewPassword()
		return plain, plain, hash, err
	}
	return "", "", nil, nil
}

// putUser creates or replaces a user: 201 then 200.
func (s *Server) putUser(c *gin.Context) {
	name := c.Param("name")
	if !UserNamePattern.MatchString(name) {
		s.fail(c, errorf(http.StatusBadRequest, "user name %q must be 1-64 letters, digits, '.', '_', '@' or '-'", name))
		return
	}
	var req userRequest
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	role, err := req.validate(true)
	if err != nil {
		s.fail(c, err)
		return
	}
	if name == who(c).User && role < who(c).Role {
		s.fail(c, errorf(http.StatusConflict, "you cannot lower your own role; another admin can"))
		return
	}
	u := store.User{Name: name, Role: role.String(), CreatedAt: s.opts.Now().UTC()}
	if old, err := s.st.User(name); err == nil {
		// What the request does not set stays: the creation time, the
		// password, and with it the mark that it is still the generated one.
		u.CreatedAt, u.PasswordHash, u.InitialHash = old.CreatedAt, old.PasswordHash, old.InitialHash
	}
	_, shown, hash, err := password(req.Password, u.PasswordHash == nil)
	if err != nil {
		s.fail(c, err)
		return
	}
	if hash != nil {
		u.PasswordHash = hash
	}
	created, err := s.st.PutUser(u)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := userView(u)
	out.Password = shown
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		c.Header("Location", "/api/v1/users/"+name)
	}
	s.log.Info("api user saved", "user", name, "role", u.Role, "by", who(c).User, "created", created)
	if hash != nil && !created {
		s.newPassword(name)
	}
	reply(c, status, cachePrivate, out)
}

// revoked ends the live streams of a user whose tokens a new password (or
// the user's removal) revoked.
func (s *Server) revoked(user string) {
	s.hub.closeWhere(func(cl *wsClient) bool { return cl.user == user })
	s.log.Info("api: the user's tokens are revoked and live streams closed", "user", user)
}

// newPassword follows a stored password change: the user's tokens are
// revoked (by the store), their streams closed, and OnNewPassword told.
func (s *Server) newPassword(user string) {
	s.revoked(user)
	if s.opts.OnNewPassword != nil {
		s.opts.OnNewPassword(user)
	}
}

func (s *Server) patchUser(c *gin.Context) {
	var req userRequest
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	role, err := req.validate(false)
	if err != nil {
		s.fail(c, err)
		return
	}
	if req.Role != nil && c.Param("name") == who(c).User && role < who(c).Role {
		s.fail(c, errorf(http.StatusConflict, "you cannot lower your own role; another admin can"))
		return
	}
	_, shown, hash, err := password(req.Password, req.ResetPassword)
	if err != nil {
		s.fail(c, err)
		return
	}
	var u store.User
	err = s.st.UpdateUser(c.Param("name"), func(x *store.User) error {
		if req.Role != nil {
			x.Role = role.String()
		}
		if hash != nil {
			x.PasswordHash = hash
		}
		u = *x
		return nil
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	if hash != nil {
		s.newPassword(u.Name)
	}
	out := userView(u)
	out.Password = shown
	reply(c, http.StatusOK, cachePrivate, out)
}

func (s *Server) deleteUser(c *gin.Context) {
	name := c.Param("name")
	if name == who(c).User {
		s.fail(c, errorf(http.StatusConflict, "you cannot remove your own account; another admin can"))
		return
	}
	if err := s.st.DeleteUser(name); err != nil {
		s.fail(c, err)
		return
	}
	s.log.Info("api user removed", "user", name, "by", who(c).User)
	s.revoked(name)
	c.Status(http.StatusNoContent)
}

type tokenBody struct {
	ID        string     `json:"id"`
	User      string     `json:"user"`
	Role      string     `json:"role"`
	Kind      string     `json:"kind"`
	Name      string     `json:"name,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func (s *Server) listTokens(c *gin.Context) {
	toks, err := s.st.Tokens()
	if err != nil {
		s.fail(c, err)
		return
	}
	now := s.opts.Now()
	out := []tokenBody{}
	for _, t := range toks {
		if t.Expired(now) {
			continue
		}
		b := tokenBody{ID: t.ID, User: t.User, Role: t.Role, Kind: t.Kind, Name: t.Name, CreatedAt: t.CreatedAt.UTC()}
		if !t.ExpiresAt.IsZero() {
			b.ExpiresAt = &t.ExpiresAt
		}
		out = append(out, b)
	}
	reply(c, http.StatusOK, cachePrivate, map[string]any{"tokens": out})
}

type tokenRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// ExpiresIn is a Go duration ("720h"); empty means the token never expires.
	ExpiresIn string `json:"expires_in"`
}

// createToken makes a long-lived API token for scripts, owned by the caller
// and capped at the caller's role.
func (s *Server) createToken(c *gin.Context) {
	var req tokenRequest
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	p := who(c)
	var bad invalid
	if req.Name == "" || len(req.Name) > 64 {
		bad.add("name", "is required: say what the token is for (1-64 characters)")
	}
	role, ok := ParseRole(req.Role)
	switch {
	case !ok:
		bad.add("role", "must be viewer, technician or admin, not %q", req.Role)
	case role > p.Role:
		bad.add("role", "cannot exceed your own role (%s)", p.Role)
	}
	var ttl time.Duration
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			bad.add("expires_in", "must be a positive duration such as \"720h\", not %q", req.ExpiresIn)
		}
		ttl = d
	}
	if err := bad.err(); err != nil {
		s.fail(c, err)
		return
	}
	now := s.opts.Now()
	// A token cannot outlive the one that made it: a stolen session must
	// not mint a key that never expires.
	if !p.Expires.IsZero() && (ttl == 0 || now.Add(ttl).After(p.Expires)) {
		ttl = p.Expires.Sub(now)
	}
	bearer, t := newToken(p.User, role, "api", req.Name, now, ttl)
	if err := s.st.PutToken(t, now); err != nil {
		s.fail(c, err)
		return
	}
	out := tokenResponse{Token: bearer, ID: t.ID, User: t.User, Role: t.Role}
	if ttl > 0 {
		out.ExpiresAt = &t.ExpiresAt
	}
	c.Header("Location", "/api/v1/tokens/"+t.ID)
	s.log.Info("api token created", "id", t.ID, "name", t.Name, "role", t.Role, "by", p.User)
	reply(c, http.StatusCreated, cachePrivate, out)
}

func (s *Server) deleteToken(c *gin.Context) {
	id := c.Param("id")
	if err := s.st.DeleteToken(id); err != nil {
		s.fail(c, err)
		return
	}
	s.hub.closeWhere(func(cl *wsClient) bool { return cl.token == id })
	c.Status(http.StatusNoContent)
}
