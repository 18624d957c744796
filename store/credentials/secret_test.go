package credentials

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestNewPassword(t *testing.T) {
	p, hash, err := NewPassword()
	if err != nil || len(p) != 26 || bcrypt.CompareHashAndPassword(hash, []byte(p)) != nil {
		t.Fatalf("NewPassword = %q, %v", p, err)
	}
	if cost, _ := bcrypt.Cost(hash); cost < bcrypt.DefaultCost {
		t.Errorf("bcrypt cost %d", cost)
	}
	if q, _, _ := NewPassword(); q == p {
		t.Error("two passwords alike")
	}
}

func TestChecker(t *testing.T) {
	c := NewChecker()
	hash, err := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check("device:a", hash, "right"); err != nil {
		t.Errorf("the right password: %v", err)
	}
	if err := c.Check("device:a", hash, "wrong"); !errors.Is(err, ErrMismatch) {
		t.Errorf("a wrong password: %v, want ErrMismatch", err)
	}
	if err := c.Check("device:nobody", nil, "right"); !errors.Is(err, ErrMismatch) {
		t.Errorf("no such account: %v, want ErrMismatch", err)
	}
	// A remembered success is the same hash and password, nothing else:
	// a new hash (the password changed) is checked anew.
	other, _ := bcrypt.GenerateFromPassword([]byte("new"), bcrypt.MinCost)
	if err := c.Check("device:a", other, "right"); !errors.Is(err, ErrMismatch) {
		t.Errorf("the old password against a new hash: %v, want ErrMismatch", err)
	}
}

// TestCheckerRunsOneBcryptAtATime: while one comparison holds the turn, a
// second waits; past MaxWait it gives up with ErrBusy (what a flood of
// logins gets) rather than queueing for ever.
func TestCheckerRunsOneBcryptAtATime(t *testing.T) {
	c := NewChecker()
	c.sem <- struct{}{} // a comparison in progress
	start := time.Now()
	hash, _ := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost)
	if err := c.Check("user:a", hash, "x"); !errors.Is(err, ErrBusy) {
		t.Fatalf("a check while another runs for longer than MaxWait: %v, want ErrBusy", err)
	}
	if waited := time.Since(start); waited < MaxWait {
		t.Errorf("gave up after %s, before MaxWait", waited)
	}
	<-c.sem
	if err := c.Check("user:a", hash, "x"); err != nil {
		t.Errorf("once the turn is free: %v", err)
	}
}
