//go:build amd64 || arm64

// go-fuse does not build for 32-bit platforms (its splice code), so the
// failed-sync tests run on 64-bit ones only.

package storetest

import (
	"context"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"fieldgate/cmd/fieldgate/testenv"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// FaultyDir is a directory whose fdatasyncs fail with EIO on demand, for
// a real process (the daemon) to meet the failure the way a card under an
// undervoltage makes the kernel report it: a FUSE pass-through of a
// directory of the test's. Writes go through to that directory as they are
// made; what fails is the fdatasync's answer, so the test can check what
// the process does with it (a failed sync must never be acknowledged, and
// the process must carry on once syncs succeed again).
type FaultyDir struct {
	// Dir is where the file system is mounted.
	Dir    string
	match  atomic.Pointer[func(path string) bool] // the files whose syncs fail
	failed atomic.Int32                           // syncs still to fail
}

// MountFaultyDir mounts a FaultyDir. It needs root (a FUSE mount without
// fusermount): without it the test is skipped, or fails under
// FIELDGATE_REQUIRE_ALL=1.
func MountFaultyDir(tb testing.TB) *FaultyDir {
	tb.Helper()
	testenv.Root(tb, "a FUSE mount")
	d := &FaultyDir{Dir: tb.TempDir()}
	root := &faultyNode{LoopbackNode: &fs.LoopbackNode{RootData: &fs.LoopbackRoot{Path: tb.TempDir()}}, d: d}
	server, err := fs.Mount(d.Dir, root, &fs.Options{
		MountOptions: fuse.MountOptions{DirectMountStrict: true, FsName: "faulty", Name: "fieldgate-test"},
	})
	if err != nil {
		tb.Fatalf("mount a FUSE pass-through on %s: %v", d.Dir, err)
	}
	tb.Cleanup(func() {
		if err := server.Unmount(); err != nil { // a killed process may hold files open
			_ = exec.Command("umount", "-l", d.Dir).Run()
		}
	})
	return d
}

// FailSyncs makes the next n fdatasyncs of the files for whose path (from
// the mount point) match is true fail with EIO.
func (d *FaultyDir) FailSyncs(match func(path string) bool, n int) {
	d.match.Store(&match)
	d.failed.Store(int32(n))
}

// Pending reports how many of the syncs FailSyncs asked for are still to
// fail.
func (d *FaultyDir) Pending() int { return max(int(d.failed.Load()), 0) }

// faultyNode is a pass-through node whose syncs may fail.
type faultyNode struct {
	*fs.LoopbackNode
	d *FaultyDir
}

var (
	_ fs.NodeFsyncer     = (*faultyNode)(nil)
	_ fs.NodeWrapChilder = (*faultyNode)(nil)
)

// WrapChild makes every node below the root a faultyNode too.
func (n *faultyNode) WrapChild(_ context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &faultyNode{LoopbackNode: ops.(*fs.LoopbackNode), d: n.d}
}

// Fsync implements fs.NodeFsyncer.
func (n *faultyNode) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	if m := n.d.match.Load(); m != nil && (*m)(n.Path(n.Root())) && n.d.failed.Add(-1) >= 0 {
		return syscall.EIO
	}
	if fh, ok := f.(fs.FileFsyncer); ok {
		return fh.Fsync(ctx, flags)
	}
	fd, err := syscall.Open(filepath.Join(n.RootData.Path, n.Path(n.Root())), syscall.O_RDONLY, 0)
	if err != nil {
		return fs.ToErrno(err)
	}
	defer syscall.Close(fd)
	return fs.ToErrno(syscall.Fsync(fd))
}
