package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// nosyncPrefix marks an ab target that runs a fieldgate binary under
// nosync: "nosync:BIN".
const nosyncPrefix = "nosync:"

// nosyncCmd execs a program under a seccomp filter that answers every
// fsync and fdatasync at once with success, without running it: the
// program is the same binary, paying everything but the wait for the disk
// and the kernel's work to write it. Beside bare mochi this splits
// fieldgate's CPU per reading into its own path and the price of its
// syncs. Nothing it writes survives a power cut: a benchmark's tool only.
func nosyncCmd(args []string, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		_, _ = io.WriteString(stderr, "usage: fieldgate-bench nosync PROGRAM [ARG…]\n")
		return errors.New("nosync: give the program to run")
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		return err
	}
	prog, err := nosyncFilter()
	if err != nil {
		return err
	}
	// The filter binds the calling thread, and execve keeps that thread's.
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("nosync: no_new_privs: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0); err != nil {
		return fmt.Errorf("nosync: seccomp: %w", err)
	}
	return syscall.Exec(path, args, os.Environ())
}

// auditArch is the seccomp architecture of this build's system calls.
var auditArch = map[string]uint32{
	"amd64": unix.AUDIT_ARCH_X86_64,
	"arm64": unix.AUDIT_ARCH_AARCH64,
	"arm":   unix.AUDIT_ARCH_ARM,
}

// nosyncFilter is the seccomp program: fsync and fdatasync of this
// architecture return 0 without entering the kernel's code; everything
// else runs.
func nosyncFilter() ([]unix.SockFilter, error) {
	arch, ok := auditArch[runtime.GOARCH]
	if !ok {
		return nil, fmt.Errorf("nosync: no seccomp architecture for %s", runtime.GOARCH)
	}
	const (
		load = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret  = unix.BPF_RET | unix.BPF_K
		// offsets in struct seccomp_data
		offNr   = 0
		offArch = 4
	)
	return []unix.SockFilter{
		{Code: load, K: offArch},
		{Code: jeq, K: arch, Jt: 0, Jf: 3}, // another ABI: allow
		{Code: load, K: offNr},
		{Code: jeq, K: unix.SYS_FDATASYNC, Jt: 2, Jf: 0},
		{Code: jeq, K: unix.SYS_FSYNC, Jt: 1, Jf: 0},
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},
		{Code: ret, K: unix.SECCOMP_RET_ERRNO}, // errno 0: success
	}, nil
}
