package credentials

import (
	"crypto/sha256"
	"slices"
	"sync"
	"time"
)

// A Throttle slows down guessing: it counts failed logins per source
// address and per account and, past a few free attempts, makes each wait —
// twice as long after every further failure. The REST API and the MQTT
// broker each keep one, so a brute force costs the attacker time and the
// gateway no bcrypt work.
//
// A throttled account would let anyone lock a device or a technician out by
// failing on purpose, so the account's wait does not apply at the address
// the account last logged in from: the real device keeps working while a
// guesser elsewhere waits.

// Policy says how a kind of key is throttled.
type Policy struct {
	// Free attempts may fail without a wait; the wait starts with the
	// Free-th failure.
	Free int
	// Base is the first wait; each further failure doubles it, up to Max.
	Base, Max time.Duration
}

// Throttle remembers failures per address and per account. Its methods are
// safe for concurrent use. Accounts are keyed by a hash of fixed size
// (a 60 KB made-up name costs what a short one does); keys are forgotten
// an hour after their last failure, swept every minute, and at most
// MaxKeys are kept (the oldest go first), so a flood of made-up names
// cannot grow it without bound. Callers refuse names that cannot exist
// before they ask: those count against the address only (Fail with "").
type Throttle struct {
	addr, account Policy
	now           func() time.Time

	mu      sync.Mutex
	entries map[string]*entry // "a:" address, "u:" account hash
	home    map[string]string // account hash → the address of its last success
	swept   time.Time         // when keys were last swept
}

// accountKey is the key of an account: a hash, so that its size is fixed.
func accountKey(account string) string {
	sum := sha256.Sum256([]byte(account))
	return string(sum[:16])
}

type entry struct {
	failures int
	until    time.Time // no attempt before this
	last     time.Time
}

// MaxKeys bounds the addresses and accounts remembered, each.
const MaxKeys = 10000

// forget is how long a key's failures are remembered.
const forget = time.Hour

// NewThrottle returns an empty throttle applying addr to source addresses and
// account to account names; now is time.Now unless a test fakes it.
func NewThrottle(addr, account Policy, now func() time.Time) *Throttle {
	if now == nil {
		now = time.Now
	}
	return &Throttle{addr: addr, account: account, now: now, entries: map[string]*entry{}, home: map[string]string{}}
}

// Wait returns how long an attempt to log in to account from addr must
// still wait: 0 lets it go ahead.
func (t *Throttle) Wait(addr, account string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	wait := t.waitLocked("a:"+addr, now)
	if account == "" {
		return wait
	}
	if k := accountKey(account); t.home[k] != addr {
		wait = max(wait, t.waitLocked("u:"+k, now))
	}
	return wait
}

func (t *Throttle) waitLocked(key string, now time.Time) time.Duration {
	if e := t.entries[key]; e != nil && e.until.After(now) {
		return e.until.Sub(now)
	}
	return 0
}

// Fail records a failed attempt to log in to account from addr; an empty
// account (a name that cannot exist) counts against the address only.
func (t *Throttle) Fail(addr, account string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if now.Sub(t.swept) > time.Minute {
		t.sweep(now)
	}
	t.failLocked("a:"+addr, t.addr, now)
	if account != "" {
		t.failLocked("u:"+accountKey(account), t.account, now)
	}
}

// sweep forgets the keys not failed for an hour. t.mu is held.
func (t *Throttle) sweep(now time.Time) {
	t.swept = now
	for k, e := range t.entries {
		if now.Sub(e.last) > forget {
			delete(t.entries, k)
		}
	}
}

func (t *Throttle) failLocked(key string, p Policy, now time.Time) {
	e := t.entries[key]
	if e == nil || now.Sub(e.last) > forget {
		if len(t.entries) >= 2*MaxKeys {
			t.prune(now)
		}
		e = &entry{}
		t.entries[key] = e
	}
	e.failures++
	e.last = now
	if over := e.failures - p.Free + 1; over > 0 {
		d := p.Base << min(over-1, 30)
		if d <= 0 || d > p.Max {
			d = p.Max
		}
		e.until = now.Add(d)
	}
}

// Succeed forgets the failures of addr and account and makes addr the
// account's home.
func (t *Throttle) Succeed(addr, account string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := accountKey(account)
	delete(t.entries, "a:"+addr)
	delete(t.entries, "u:"+k)
	if _, ok := t.home[k]; !ok && len(t.home) >= MaxKeys {
		clear(t.home) // only real accounts get here: more than MaxKeys is a bug, not an attack
	}
	t.home[k] = addr
}

// prune drops keys not failed for an hour, and if none, the oldest tenth.
// t.mu is held.
func (t *Throttle) prune(now time.Time) {
	t.sweep(now)
	if len(t.entries) < 2*MaxKeys {
		return
	}
	keys := make([]string, 0, len(t.entries))
	for k := range t.entries {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return t.entries[a].last.Compare(t.entries[b].last) })
	for _, k := range keys[:len(keys)/10+1] {
		delete(t.entries, k)
	}
}
