package httpapi

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"fieldgate/store"
	"fieldgate/store/credentials"
)

// Role is what an account may do; each role includes the ones below it.
type Role int

// Roles, weakest first.
const (
	RoleNone       Role = iota
	RoleViewer          // reads
	RoleTechnician      // devices, exports, dead-letter retries
	RoleAdmin           // users and tokens
)

var roleNames = map[Role]string{RoleViewer: "viewer", RoleTechnician: "technician", RoleAdmin: "admin"}

// String returns the role's name as written in the API and the store.
func (r Role) String() string { return roleNames[r] }

// ParseRole returns the role with the given name.
func ParseRole(name string) (Role, bool) {
	for r, n := range roleNames {
		if n == name {
			return r, true
		}
	}
	return RoleNone, false
}

// principal is who made a request.
type principal struct {
	User    string
	Role    Role
	Token   string    // token id
	Expires time.Time // when the token expires (zero: never)
}

const principalKey = "fieldgate.principal"

// tokenPrefix starts every bearer token, so leaked ones are easy to grep for.
const tokenPrefix = "fgt_"

// newToken makes a token for user with role, returning the bearer string
// (shown once) and the record to store.
func newToken(user string, role Role, kind, name string, now time.Time, ttl time.Duration) (bearer string, t store.Token) {
	var id [8]byte
	var secret [32]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails on Linux
	_, _ = rand.Read(secret[:])
	t = store.Token{ID: hex.EncodeToString(id[:]), User: user, Role: role.String(), Kind: kind, Name: name, CreatedAt: now.UTC()}
	sum := sha256.Sum256(secret[:])
	t.SecretHash = sum[:]
	if ttl > 0 {
		t.ExpiresAt = now.Add(ttl).UTC()
	}
	return tokenPrefix + t.ID + "_" + base64.RawURLEncoding.EncodeToString(secret[:]), t
}

var errBadToken = errorf(http.StatusUnauthorized, "the bearer token is invalid, expired or revoked; log in again")

// checkToken resolves a bearer string to its principal.
func (s *Server) checkToken(bearer string) (principal, error) {
	rest, ok := strings.CutPrefix(bearer, tokenPrefix)
	id, secretText, ok2 := strings.Cut(rest, "_")
	secret, err := base64.RawURLEncoding.DecodeString(secretText)
	if !ok || !ok2 || err != nil || len(id) != 16 {
		return principal{}, errBadToken
	}
	t, err := s.st.Token(id)
	if errors.Is(err, store.ErrNotFound) {
		return principal{}, errBadToken
	} else if err != nil {
		return principal{}, err
	}
	sum := sha256.Sum256(secret)
	if subtle.ConstantTimeCompare(sum[:], t.SecretHash) != 1 || t.Expired(s.opts.Now()) {
		return principal{}, errBadToken
	}
	u, err := s.st.User(t.User)
	if errors.Is(err, store.ErrNotFound) {
		return principal{}, errBadToken
	} else if err != nil {
		return principal{}, err
	}
	userRole, _ := ParseRole(u.Role)
	tokenRole, _ := ParseRole(t.Role)
	return principal{User: u.Name, Role: min(userRole, tokenRole), Token: t.ID, Expires: t.ExpiresAt}, nil
}

// authenticate resolves the Authorization header (or, for the WebSocket,
// which browsers cannot give headers, the access_token parameter). A request
// without credentials goes on anonymous; a bad token is refused.
func (s *Server) authenticate(c *gin.Context) {
	bearer := ""
	if h := c.GetHeader("Authorization"); h != "" {
		scheme, rest, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			s.fail(c, errorf(http.StatusUnauthorized, "use Authorization: Bearer <token>"))
			return
		}
		bearer = strings.TrimSpace(rest)
	} else if c.FullPath() == "/api/v1/ws" {
		bearer = c.Query("access_token")
	}
	if bearer != "" {
		p, err := s.checkToken(bearer)
		if err != nil {
			s.fail(c, err)
			return
		}
		c.Set(principalKey, p)
	}
	c.Next()
}

// require lets a request through only with at least role. Reads (role
// viewer) are open to anyone when OpenReads is on.
func (s *Server) require(role Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		p := who(c)
		switch {
		case role == RoleViewer && s.opts.OpenReads:
		case p.Role == RoleNone:
			s.fail(c, errorf(http.StatusUnauthorized, "this needs a %s token: POST /api/v1/auth/login, then send Authorization: Bearer <token>", role))
			return
		case p.Role < role:
			s.fail(c, errorf(http.StatusForbidden, "%s %q may not do this; it needs the %s role", p.Role, p.User, role))
			return
		}
		c.Next()
	}
}

func who(c *gin.Context) principal {
	p, _ := c.Get(principalKey)
	pr, _ := p.(principal)
	return pr
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type tokenResponse struct {
	Token     string     `json:"token"`
	ID        string     `json:"id"`
	User      string     `json:"user"`
	Role      string     `json:"role"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// login exchanges a user name and password for a session token.
func (s *Server) login(c *gin.Context) {
	var req loginRequest
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	var bad invalid
	if req.Username == "" {
		bad.add("username", "is required")
	}
	if req.Password == "" {
		bad.add("password", "is required")
	}
	if err := bad.err(); err != nil {
		s.fail(c, err)
		return
	}
	addr, account := c.ClientIP(), strings.ToLower(req.Username)
	if !UserNamePattern.MatchString(req.Username) {
		// A name no account can have: no bcrypt, and only the address is
		// throttled (a made-up 60 KB name must not become a key).
		account = ""
	}
	if wait := s.logins.Wait(addr, account); wait > 0 {
		s.metrics.loginThrottle.Inc()
		c.Header("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		s.fail(c, errorf(http.StatusTooManyRequests, "too many failed logins from this address or for this account; try again in %s", wait.Round(time.Second)))
		return
	}
	if account == "" {
		s.metrics.loginFailures.Inc()
		s.logins.Fail(addr, "")
		s.log.Warn("api login failed: no account can have that name", "user", req.Username, "addr", addr)
		c.Set(loggedKey, true)
		s.fail(c, errorf(http.StatusUnauthorized, "wrong user name or password"))
		return
	}
	u, err := s.st.User(req.Username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.fail(c, err)
		return
	}
	switch err := s.deps.Credentials.Check("user:"+account, u.PasswordHash, req.Password); {
	case errors.Is(err, credentials.ErrBusy):
		s.fail(c, fmt.Errorf("%w: the gateway is busy checking other logins", ErrBusy))
		return
	case err != nil:
		s.metrics.loginFailures.Inc()
		s.logins.Fail(addr, account)
		s.log.Warn("api login failed", "user", req.Username, "addr", c.ClientIP())
		c.Set(loggedKey, true)
		s.fail(c, errorf(http.StatusUnauthorized, "wrong user name or password"))
		return
	}
	s.logins.Succeed(addr, account)
	role, _ := ParseRole(u.Role)
	now := s.opts.Now()
	bearer, t := newToken(u.Name, role, "session", "login", now, s.opts.SessionTTL)
	if err := s.st.PutToken(t, now); err != nil {
		s.fail(c, err)
		return
	}
	s.log.Info("api login", "user", u.Name, "role", u.Role, "addr", c.ClientIP())
	reply(c, http.StatusOK, cachePrivate, tokenResponse{Token: bearer, ID: t.ID, User: u.Name, Role: t.Role, ExpiresAt: &t.ExpiresAt})
}

// Failed logins: an address gets 5 free attempts, an account (from
// addresses other than its last good one) 10; then each waits 1 s, doubling
// with every further failure, up to 10 and 5 minutes. A guesser is slowed
// to a crawl and costs no bcrypt; a technician who mistyped waits seconds.
var (
	addrPolicy    = credentials.Policy{Free: 5, Base: time.Second, Max: 10 * time.Minute}
	accountPolicy = credentials.Policy{Free: 10, Base: time.Second, Max: 5 * time.Minute}
)

// logout revokes the token the request carries.
func (s *Server) logout(c *gin.Context) {
	p := who(c)
	if p.Token == "" {
		s.fail(c, errorf(http.StatusUnauthorized, "log out needs the token to revoke: Authorization: Bearer <token>"))
		return
	}
	if err := s.st.DeleteToken(p.Token); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.fail(c, err)
		return
	}
	s.hub.closeWhere(func(cl *wsClient) bool { return cl.token == p.Token })
	c.Status(http.StatusNoContent)
}
