package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"fieldgate/cmd/fieldgate-cloud/receiver/pgtest"
)

// machine describes where the report ran.
type machine struct {
	CPU, Kernel, OS, Disk                    string
	Cores                                    int
	MemGiB                                   float64
	Go, Bbolt, Mochi, Mosquitto, Wrk, Chrome string
	Postgres                                 string
	Commit, Date                             string
}

// describeMachine reads the machine's facts; what cannot be read says so.
func describeMachine(ctx context.Context) machine {
	m := machine{Cores: runtime.NumCPU(), Date: time.Now().UTC().Format("2006-01-02 15:04 MST")}
	m.CPU = fileField("/proc/cpuinfo", "model name", ":")
	if kb, err := strconv.ParseFloat(strings.Fields(fileField("/proc/meminfo", "MemTotal", ":") + " 0")[0], 64); err == nil {
		m.MemGiB = kb / (1 << 20)
	}
	m.OS = strings.Trim(fileField("/etc/os-release", "PRETTY_NAME", "="), `"`)
	m.Kernel = firstLine(ctx, "uname", "-srm")
	m.Disk = tempDisk()
	m.Go = firstLine(ctx, "go", "env", "GOVERSION")
	m.Bbolt = firstLine(ctx, "go", "list", "-m", "-f", "{{.Version}}", "go.etcd.io/bbolt")
	m.Mochi = firstLine(ctx, "go", "list", "-m", "-f", "{{.Version}}", "github.com/mochi-mqtt/server/v2")
	m.Mosquitto = strings.TrimPrefix(firstLine(ctx, "mosquitto", "-h"), "mosquitto version ")
	m.Wrk = strings.Fields(firstLine(ctx, "wrk", "-v") + " ? ?")[1]
	m.Chrome = lastLine(ctx, "chromium", "--version")
	m.Postgres = "unknown (not installed)"
	if dir, err := pgtest.BinDir(); err == nil {
		m.Postgres = strings.TrimPrefix(firstLine(ctx, filepath.Join(dir, "postgres"), "--version"), "postgres (PostgreSQL) ")
	}
	m.Commit = firstLine(ctx, "git", "describe", "--always", "--dirty")
	return m
}

// fileField returns the value after sep on the first line of path that
// starts with key, or "unknown".
func fileField(path, key, sep string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, sep); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// firstLine runs a command and returns the first line of its output.
func firstLine(ctx context.Context, name string, args ...string) string {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if len(out) == 0 {
		return fmt.Sprintf("unknown (%v)", err)
	}
	l, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(l)
}

// lastLine is firstLine for programs that print warnings first (Debian's
// chromium wrapper does).
func lastLine(ctx context.Context, name string, args ...string) string {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	ls := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(out) == 0 {
		return fmt.Sprintf("unknown (%v)", err)
	}
	return strings.TrimSpace(ls[len(ls)-1])
}

// tempDisk describes the file system holding the temporary directory,
// where the stores of every run live.
func tempDisk() string {
	dir, err := filepath.EvalSymlinks(os.TempDir())
	if err != nil {
		return "unknown"
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "unknown"
	}
	best, desc := "", "unknown"
	for _, l := range strings.Split(string(b), "\n") {
		// id parent major:minor root mountpoint options … - fstype source superoptions
		pre, post, ok := strings.Cut(l, " - ")
		fs, ps := strings.Fields(post), strings.Fields(pre)
		if !ok || len(fs) < 2 || len(ps) < 5 {
			continue
		}
		mp := ps[4]
		if (dir == mp || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, desc = mp, fmt.Sprintf("%s on %s (%s, mounted at %s)", fs[0], fs[1], dir, mp)
		}
	}
	return desc
}
