package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"fieldgate/cmd/fieldgate/daemontest"
	"fieldgate/store"
)

// readyHelperEnv, set to a store path, turns TestReadyHelper into the
// child of BenchmarkReady that fills the store's head: it appends the
// readings durably and waits to be killed, so that they stay in the
// write-ahead log, not yet checkpointed.
const readyHelperEnv = "FIELDGATE_TEST_READY_HELPER"

func TestReadyHelper(t *testing.T) {
	path := os.Getenv(readyHelperEnv)
	if path == "" {
		t.Skip("helper process for BenchmarkReady")
	}
	n, _ := strconv.Atoi(os.Getenv(readyHelperEnv + "_N"))
	st, err := store.Open(store.Options{Path: path})
	if err != nil {
		fmt.Println("OPEN", err)
		os.Exit(2)
	}
	if err := appendMany(st, n, 1_000_000); err != nil {
		fmt.Println("APPEND", err)
		os.Exit(3)
	}
	fmt.Println("READY")
	select {} // until SIGKILL: no checkpoint at close
}

// appendMany stores n readings of 20 sensors, one a second, from base on.
func appendMany(st *store.Store, n, base int) error {
	t0 := time.Now().Add(-time.Duration(base+n) * time.Second)
	for i := 0; i < n; i += 10_000 {
		rs := make([]store.Reading, 0, 10_000)
		for j := i; j < n && j < i+10_000; j++ {
			rs = append(rs, store.Reading{Source: fmt.Sprintf("node-%02d", j%20), Quantity: "temperature", Value: float64(j),
				Unit: "Cel", Time: t0.Add(time.Duration(base+j) * time.Second)})
		}
		if err := st.Append(context.Background(), rs...); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkReady measures the daemon's time from exec to READY=1 on
// systemd's notify socket, with its files dropped from the page cache (as
// after a reboot): with an empty data directory, and with 1M readings in
// the store file plus a head just short of its 100,000-reading bound in
// the write-ahead log. READY waits for the log's replay: nothing is
// accepted before every acknowledged reading is back. Run with -benchtime
// 5x; FIELDGATE_TEST_BENCH_READY_READINGS changes the 1M.
func BenchmarkReady(b *testing.B) {
	stored := 1_000_000
	if v := os.Getenv("FIELDGATE_TEST_BENCH_READY_READINGS"); v != "" {
		stored, _ = strconv.Atoi(v)
	}
	bin := daemontest.Build(b)
	full := b.TempDir()
	st, err := store.Open(store.Options{Path: filepath.Join(full, "fieldgate.db")})
	if err != nil {
		b.Fatal(err)
	}
	if err := appendMany(st, stored, 0); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil { // checkpoints everything into the file
		b.Fatal(err)
	}
	fillHead(b, filepath.Join(full, "fieldgate.db"), store.DefaultConfig().Head.MaxReadings-1)
	for _, c := range []struct{ name, dir string }{{"empty", ""}, {"1M+head", full}} {
		b.Run(c.name, func(b *testing.B) {
			var total time.Duration
			for range b.N {
				dir := c.dir
				if dir == "" {
					dir = b.TempDir()
				}
				dropCaches(b, dir)
				total += timeToReady(b, bin, dir)
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ready-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// fillHead appends n readings to the store at path in a child process
// that is then SIGKILLed, leaving them in the log.
func fillHead(b *testing.B, path string, n int) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestReadyHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), readyHelperEnv+"="+path, fmt.Sprintf("%s_N=%d", readyHelperEnv, n))
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "READY" {
		_ = cmd.Process.Kill()
		b.Fatalf("head filler: %q", lines.Text())
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait() // killed, as intended
}

// dropCaches evicts the files under dir from the page cache.
func dropCaches(b *testing.B, dir string) {
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	})
	if err != nil {
		b.Fatal(err)
	}
}

// timeToReady starts the daemon on dir and returns how long it took to
// send READY=1, then SIGKILLs it (a clean stop would checkpoint the head).
func timeToReady(b *testing.B, bin, dir string) time.Duration {
	cfg := filepath.Join(dir, "config.yaml")
	writeFileB(b, cfg, fmt.Sprintf("data_dir: %s\nsensors: []\nlog:\n  level: warn\nmqtt:\n  listen: 127.0.0.1:0\napi:\n  listen: 127.0.0.1:0\nclock:\n  trust: system\n", dir))
	sock, want := daemontest.ListenNotify(b, b.TempDir())
	cmd := exec.Command(bin, "-config", cfg)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	want("READY=1")
	took := time.Since(start)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait() // killed
	return took
}
