package credentials

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// NewPassword returns a random password — 130 bits in 26 characters, none
// that confuse people or shells — and its hash.
func NewPassword() (password string, hash []byte, err error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	password = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
	hash, err = Hash(password)
	return password, hash, err
}

// Hash hashes a password (one a person chose, or NewPassword's).
func Hash(password string) ([]byte, error) {
	return bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
}

// Errors of Check.
var (
	// ErrMismatch: the password is not the account's (or there is no
	// such account).
	ErrMismatch = errors.New("credentials: wrong name or password")
	// ErrBusy: the check waited longer than MaxWait for its turn.
	ErrBusy = errors.New("credentials: too many logins at once; try again")
)

// MaxWait bounds how long a check waits for its turn at bcrypt.
const MaxWait = 5 * time.Second

// Checker compares passwords with stored hashes, one bcrypt at a time. A
// successful check is remembered (a SHA-256 of the password, against the
// hash it matched), so a fleet of devices reconnecting after a Wi-Fi outage
// costs one bcrypt each, once. It is safe for concurrent use.
type Checker struct {
	sem   chan struct{}
	mu    sync.Mutex
	known map[string]match
}

type match struct {
	hash []byte   // the bcrypt hash that was checked
	sum  [32]byte // SHA-256 of the password that matched it
}

// NewChecker returns a Checker. A process makes one and gives it to every
// component that checks passwords.
func NewChecker() *Checker {
	return &Checker{sem: make(chan struct{}, 1), known: map[string]match{}}
}

// dummyHash stands in for an unknown account's hash, made on first use
// (bcrypt at start-up costs a Pi Zero a second).
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := Hash("fieldgate dummy password") // fails only beyond 72 bytes
	return h
})

// Check compares password with hash, the stored hash of the account named
// key ("device:esp32-a", "user:maria"). A nil hash — no such account, or
// one without a password — is compared with a dummy at the same cost and
// is always ErrMismatch. It returns nil on a match, ErrMismatch or
// ErrBusy.
func (c *Checker) Check(key string, hash []byte, password string) error {
	if len(hash) == 0 {
		if err := c.compare(dummyHash(), password); errors.Is(err, ErrBusy) {
			return err
		}
		return ErrMismatch
	}
	sum := sha256.Sum256([]byte(password))
	c.mu.Lock()
	m, ok := c.known[key]
	c.mu.Unlock()
	if ok && subtle.ConstantTimeCompare(m.hash, hash) == 1 && subtle.ConstantTimeCompare(m.sum[:], sum[:]) == 1 {
		return nil
	}
	if err := c.compare(hash, password); err != nil {
		return err
	}
	c.mu.Lock()
	c.known[key] = match{hash: hash, sum: sum}
	c.mu.Unlock()
	return nil
}

// compare runs one bcrypt comparison when its turn comes.
func (c *Checker) compare(hash []byte, password string) error {
	t := time.NewTimer(MaxWait)
	defer t.Stop()
	select {
	case c.sem <- struct{}{}:
	case <-t.C:
		return ErrBusy
	}
	defer func() { <-c.sem }()
	if err := bcrypt.CompareHashAndPassword(hash, []byte(password)); err != nil {
		return ErrMismatch
	}
	return nil
}
