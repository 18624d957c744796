// Package throttle slows down guessing: it counts failed logins per source
// address and per account and, past a few free attempts, makes each wait —
// twice as long after every further failure. The REST API and the MQTT
// broker each keep one, so a brute force costs the attacker time and the
// gateway no bcrypt work.
//
// A throttled account would let anyone lock a device or a technician out by
// failing on purpose, so the account's wait does not apply at the address
// the account last logged in from: the real device keeps working while a
// guesser elsewhere waits.
package throttle

import (
	"slices"
	"sync"
	"time"
)

// Policy says how a kind of key is throttled.
type Policy struct {
	// Free attempts may fail without a wait; the wait starts with the
	// Free-th failure.
	Free int
	// Base is the first wait; each further failure doubles it, up to Max.
	Base, Max time.Duration
}

// Throttle remembers failures per address and per account. Its methods are
// safe for concurrent use. Keys are forgotten an hour after their last
// failure, and at most MaxKeys are kept (the oldest go first), so a flood
// of made-up account names cannot grow it without bound.
type Throttle struct {
	addr, account Policy
	now           func() time.Time

	mu      sync.Mutex
	entries map[string]*entry // "a:" address, "u:" account
	home    map[string]string // account → the address of its last success
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

// New returns an empty throttle applying addr to source addresses and
// account to account names; now is time.Now unless a test fakes it.
func New(addr, account Policy, now func() time.Time) *Throttle {
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
	if t.home[account] != addr {
		wait = max(wait, t.waitLocked("u:"+account, now))
	}
	return wait
}

func (t *Throttle) waitLocked(key string, now time.Time) time.Duration {
	if e := t.entries[key]; e != nil && e.until.After(now) {
		return e.until.Sub(now)
	}
	return 0
}

// Fail records a failed attempt to log in to account from addr.
func (t *Throttle) Fail(addr, account string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.failLocked("a:"+addr, t.addr, now)
	t.failLocked("u:"+account, t.account, now)
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
	delete(t.entries, "a:"+addr)
	delete(t.entries, "u:"+account)
	if _, ok := t.home[account]; !ok && len(t.home) >= MaxKeys {
		clear(t.home) // only real accounts get here: more than MaxKeys is a bug, not an attack
	}
	t.home[account] = addr
}

// prune drops keys not failed for an hour, and if none, the oldest tenth.
// t.mu is held.
func (t *Throttle) prune(now time.Time) {
	for k, e := range t.entries {
		if now.Sub(e.last) > forget {
			delete(t.entries, k)
		}
	}
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
