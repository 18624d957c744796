package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"fieldgate/cmd/fieldgate/daemontest"
	"fieldgate/cmd/fieldgate/testenv"
	"fieldgate/store"
)

// An operator adds a device with sudo while the data directory belongs to
// the service's user: files the command created were root's, and the
// service could not open its own store. They are handed back.
func TestCLIAsRootLeavesTheStoreToItsOwner(t *testing.T) {
	testenv.Root(t, "acting as root")
	const service = 65534 // nobody, standing in for the unit's user
	dir := filepath.Join(t.TempDir(), "fieldgate")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, service, service); err != nil {
		t.Fatal(err)
	}
	cfg := daemontest.WriteConfig(t, fmt.Sprintf("data_dir: %s\n", dir))
	var out bytes.Buffer
	for _, args := range [][]string{{"device", "add", "esp-kitchen"}, {"user", "add", "maria", "-role", "technician"}} {
		if err := run(context.Background(), append(append([]string{"fieldgate"}, args...), "-config", cfg), envMap(nil), &out, &out); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out.String())
		}
	}
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files++
		if st := info.Sys().(*syscall.Stat_t); st.Uid != service || st.Gid != service {
			t.Errorf("%s belongs to %d:%d, want the data directory's owner", path, st.Uid, st.Gid)
		}
		return nil
	})
	if err != nil || files < 2 {
		t.Fatalf("walked %d files: %v", files, err)
	}
}

// Every management command opens the store between the daemon's runs:
// readings of this boot waiting for the clock to sync must keep waiting
// (a command that forgot the boot sent them to the cloud with 1970 times).
func TestCommandsLeaveClockRepairAsItWas(t *testing.T) {
	dir := t.TempDir()
	cfg := daemontest.WriteConfig(t, fmt.Sprintf("data_dir: %s\n", dir))
	path := filepath.Join(dir, "fieldgate.db")
	openBoot := func() *store.Store {
		t.Helper()
		st, err := store.Open(store.Options{Path: path, BootID: "boot-a"})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := openBoot()
	var rs []store.Reading
	for i := range 20 {
		r := store.Reading{Source: "i2c1-0x44", Quantity: "temperature", Value: float64(i), Unit: "Cel", Time: time.Unix(int64(i), 0).UTC()}
		if i >= 17 {
			r.Clock, r.Mono = store.ClockUnsynced, time.Duration(i+1)*time.Minute
		}
		rs = append(rs, r)
	}
	if err := st.Append(context.Background(), rs...); err != nil {
		t.Fatal(err)
	}
	for _, first := range []uint64{1, 9} { // two refused batches, before the readings held for repair
		if _, _, _, err := st.FormBatch(first, first+7, store.BatchLimits{}); err != nil {
			t.Fatal(err)
		}
		if err := st.DeadLetterBatch(first, 422, "bad unit"); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"device", "add", "esp-kitchen"}, {"device", "list"}, {"device", "passwd", "esp-kitchen"}, {"device", "remove", "esp-kitchen"},
		{"user", "add", "maria"}, {"user", "list"}, {"user", "passwd", "maria"}, {"user", "remove", "maria"},
		{"deadletters", "list"}, {"deadletters", "discard", "9"}, {"deadletters", "retry"},
	} {
		var out bytes.Buffer
		if err := run(context.Background(), append(append([]string{"fieldgate"}, args...), "-config", cfg), envMap(nil), &out, &out); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out.String())
		}
		st := openBoot()
		cr, err := st.ClockRepair()
		if err != nil || cr.Pending != 3 || cr.Stranded != 0 {
			t.Errorf("after %v: clock repair %+v (%v), want 3 pending and none stranded", args, cr, err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// The dead-letter commands did their work: 9-16 given up, 1-8 a
	// batch again.
	st = openBoot()
	defer st.Close()
	ob, err := st.Outbox()
	if err != nil {
		t.Fatal(err)
	}
	if len(ob.DeadLetters) != 0 || len(ob.Batches) != 1 || ob.Batches[0].First != 1 || ob.Batches[0].Last != 8 {
		t.Errorf("outbox after retry and discard: %+v", ob)
	}
	if dropped, _, err := st.Removed(); err != nil || dropped["dead_letter_discarded"] != 8 {
		t.Errorf("dropped %v (%v), want dead_letter_discarded 8", dropped, err)
	}
	if n, err := st.RepairClock(time.Now()); err != nil || n != 3 {
		t.Errorf("RepairClock = %d, %v; want the 3 readings", n, err)
	}
}
