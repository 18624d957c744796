package store

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOpenRefusesWhatValidateReports: one set of ranges. A configuration
// and a program that opens the store directly are held to the same.
func TestOpenRefusesWhatValidateReports(t *testing.T) {
	for name, c := range map[string]Config{
		"tiny head":       {Head: HeadConfig{MaxReadings: 10}},
		"long commit":     {CommitInterval: time.Hour},
		"odd policy":      {FullPolicy: "drop_newest"},
		"small store":     {MaxSize: 512 << 10},
		"long window":     {SyncWindow: time.Minute},
		"retention above": {MaxSize: 8 << 20, Retention: RetentionConfig{MaxSize: 16 << 20}},
	} {
		var reported []string
		d := Options{Config: c}.withDefaults().Config
		d.Validate(func(key, msg string) { reported = append(reported, key+": "+msg) })
		if len(reported) != 1 {
			t.Errorf("%s: Validate reported %v, want one problem", name, reported)
			continue
		}
		_, err := Open(Options{Path: filepath.Join(t.TempDir(), "fieldgate.db"), Config: c})
		if err == nil || !strings.Contains(err.Error(), reported[0]) {
			t.Errorf("%s: Open: %v, want %q", name, err, reported[0])
		}
	}
	if s, err := Open(Options{Path: filepath.Join(t.TempDir(), "fieldgate.db"), Config: Config{Head: HeadConfig{MaxReadings: 10}}, anyTiming: true}); err != nil {
		t.Errorf("a test's tiny head: %v", err)
	} else {
		s.Close()
	}
}

func TestDefaultConfigIsValid(t *testing.T) {
	DefaultConfig().Validate(func(key, msg string) { t.Errorf("default %s: %s", key, msg) })
}

// TestA32BitStoreFitsTheAddressSpace: bbolt maps the whole file.
func TestA32BitStoreFitsTheAddressSpace(t *testing.T) {
	c := DefaultConfig()
	c.MaxSize = 2 << 30
	var got []string
	c.validate(func(key, msg string) { got = append(got, key+": "+msg) }, false, 32)
	if len(got) != 1 || got[0] != "max_size: 2GiB: a 32-bit system can map at most 1536MiB" {
		t.Errorf("32-bit: %v", got)
	}
	c.validate(func(key, msg string) { t.Errorf("64-bit: %s: %s", key, msg) }, false, 64)
}
