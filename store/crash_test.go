package store

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashHelperEnv, when set to a store path, turns TestCrashHelper into the
// child process of TestCrashSafety: it appends under load and prints one
// "ACK seq value" line for every reading whose Append returned.
const crashHelperEnv = "FIELDGATE_TEST_CRASH_HELPER"

func TestCrashHelper(t *testing.T) {
	path := os.Getenv(crashHelperEnv)
	if path == "" {
		t.Skip("helper process for TestCrashSafety")
	}
	s, err := Open(Options{Path: path, Config: Config{CommitInterval: 5 * time.Millisecond}})
	if err != nil {
		fmt.Println("OPEN", err)
		os.Exit(2)
	}
	base, _ := strconv.ParseFloat(os.Getenv(crashHelperEnv+"_BASE"), 64)
	var out sync.Mutex
	fmt.Println("READY")
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				v := base + float64(w*1_000_000+i)
				n := 1 + i%3 // single readings and small packs, like MQTT nodes
				rs := make([]Reading, n)
				for j := range rs {
					rs[j] = Reading{Source: fmt.Sprintf("node-%d", w), Quantity: "temperature", Value: v + float64(j)/10, Unit: "Cel", Time: time.Now()}
				}
				if err := s.Append(context.Background(), rs...); err != nil {
					fmt.Println("ERR", err)
					os.Exit(3)
				}
				out.Lock()
				for _, r := range rs {
					fmt.Printf("ACK %d %s %v\n", r.Seq, r.Source, r.Value)
				}
				out.Unlock()
				// Queued readings ride along; they may be lost in a crash.
				_ = s.Enqueue(context.Background(), Reading{Source: "sim", Quantity: "humidity", Value: 50, Time: time.Now()})
			}
		}()
	}
	wg.Wait()
}

// TestCrashSafety kills a process appending under load with SIGKILL at
// random moments: every reading whose Append returned must be on disk after
// reopen, with its seq and value, and the file must pass bbolt's check.
func TestCrashSafety(t *testing.T) {
	t.Parallel() // the three long randomized suites share the CPUs
	path := filepath.Join(t.TempDir(), "crash.db")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	type ack struct {
		source string
		value  float64
	}
	acked := make(map[uint64]ack)
	cycles := 24 / raceScale
	if testing.Short() {
		cycles = 6 // under emulation each cycle takes seconds
	}
	for cycle := range cycles {
		cmd := selfCommand("-test.run=^TestCrashHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashHelperEnv+"="+path, fmt.Sprintf("%s_BASE=%d", crashHelperEnv, (cycle+1)*100_000_000))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(stdout)
		if !lines.Scan() || lines.Text() != "READY" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("cycle %d: helper did not start: %q %v", cycle, lines.Text(), lines.Err())
		}
		delay := time.Duration(20+rng.IntN(250)) * time.Millisecond
		killer := time.AfterFunc(delay, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
		n := 0
		for lines.Scan() {
			f := strings.Fields(lines.Text())
			if len(f) != 4 || f[0] != "ACK" {
				if f[0] == "ERR" || f[0] == "OPEN" {
					t.Errorf("cycle %d: helper: %s", cycle, lines.Text())
				}
				continue // a line cut short by the kill
			}
			seq, err1 := strconv.ParseUint(f[1], 10, 64)
			val, err2 := strconv.ParseFloat(f[3], 64)
			if err1 != nil || err2 != nil {
				continue
			}
			if prev, dup := acked[seq]; dup {
				t.Fatalf("cycle %d: seq %d acknowledged twice (%v and %s %v)", cycle, seq, prev, f[2], val)
			}
			acked[seq] = ack{f[2], val}
			n++
		}
		killer.Stop()
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("cycle %d: helper exited on its own: %v", cycle, err)
		}
		if n == 0 {
			t.Logf("cycle %d: killed after %v before any ack", cycle, delay)
		}
	}
	s := mustOpen(t, Options{Path: path})
	mustCheck(t, s)
	all, err := s.ReadingsAfter(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	stored := make(map[uint64]Reading, len(all))
	var prev uint64
	for _, r := range all {
		if r.Seq <= prev {
			t.Fatalf("seq %d after %d: not strictly increasing", r.Seq, prev)
		}
		prev = r.Seq
		stored[r.Seq] = r
	}
	for seq, a := range acked {
		r, ok := stored[seq]
		if !ok {
			t.Errorf("acknowledged reading %d (%s %v) is missing after SIGKILL", seq, a.source, a.value)
			continue
		}
		if r.Source != a.source || r.Value != a.value {
			t.Errorf("reading %d is %s %v on disk, %s %v when acknowledged", seq, r.Source, r.Value, a.source, a.value)
		}
	}
	indexed := 0
	for _, k := range s.Series() {
		n, err := s.Count(Query{Source: k.Source, Quantity: k.Quantity})
		if err != nil {
			t.Fatal(err)
		}
		indexed += n
	}
	if indexed != len(all) || int64(len(all)) != s.Stats().Readings {
		t.Errorf("index holds %d, readings bucket %d, count %d: they must agree", indexed, len(all), s.Stats().Readings)
	}
	t.Logf("%d cycles: %d acknowledged readings all present; %d readings stored in all", cycles, len(acked), len(all))
}

// selfCommand runs this test binary again. Under qemu-user (the ARM runs
// set FIELDGATE_TEST_EMULATOR) the kernel cannot exec an ARM binary itself, so
// the emulator runs it.
func selfCommand(args ...string) *exec.Cmd {
	if emu := os.Getenv("FIELDGATE_TEST_EMULATOR"); emu != "" {
		return exec.Command(emu, append([]string{os.Args[0]}, args...)...)
	}
	return exec.Command(os.Args[0], args...)
}
