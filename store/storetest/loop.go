package storetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"fieldgate/cmd/fieldgate/testenv"
)

// BlockDevice is an ext4 file system of its own on a loop device, mounted
// for a test or benchmark: what its block device receives is what an SD
// card would, journal included — unlike /proc/PID/io's write_bytes, which
// counts page-cache writeback and overstates small writes.
type BlockDevice struct {
	// Dir is where the file system is mounted.
	Dir  string
	name string // loopN
}

// MountLoop makes a file system of sizeMiB on a loop device, formatted
// with ext4's journal on as on a Raspberry Pi and mounted noatime as
// Raspberry Pi OS mounts its root. It needs root (losetup, mkfs.ext4,
// mount): without it the caller is skipped, or fails under
// FIELDGATE_REQUIRE_ALL=1.
func MountLoop(tb testing.TB, sizeMiB int) *BlockDevice {
	tb.Helper()
	testenv.Root(tb, "a loop device")
	img := filepath.Join(tb.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Truncate(img, int64(sizeMiB)<<20); err != nil {
		tb.Fatal(err)
	}
	dev := strings.TrimSpace(run(tb, "losetup", "--find", "--show", img))
	tb.Cleanup(func() { runQuiet(tb, "losetup", "-d", dev) })
	// Initialise inode tables and journal now, not lazily while measuring.
	run(tb, "mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", dev)
	dir := tb.TempDir()
	run(tb, "mount", "-o", "noatime", dev, dir)
	tb.Cleanup(func() { runQuiet(tb, "umount", dir) })
	return &BlockDevice{Dir: dir, name: filepath.Base(dev)}
}

// BytesWritten returns what the block device has received so far: its
// sectors written (/sys/block/loopN/stat) times 512.
func (d *BlockDevice) BytesWritten(tb testing.TB) uint64 {
	tb.Helper()
	b, err := os.ReadFile("/sys/block/" + d.name + "/stat")
	if err != nil {
		tb.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) < 7 {
		tb.Fatalf("/sys/block/%s/stat: %q", d.name, b)
	}
	n, err := strconv.ParseUint(f[6], 10, 64)
	if err != nil {
		tb.Fatal(err)
	}
	return n * 512
}

// Sync flushes the file system, so that what the kernel holds back
// (delayed allocation, the journal's next commit) is counted.
func (d *BlockDevice) Sync(tb testing.TB) {
	tb.Helper()
	run(tb, "sync", "-f", d.Dir)
}

func run(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func runQuiet(tb testing.TB, name string, args ...string) {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		tb.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
