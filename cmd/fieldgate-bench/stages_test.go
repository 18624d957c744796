package main

import (
	"math"
	"strings"
	"testing"
)

// perfScript is `perf script` output of fieldgate under load, trimmed:
// a PUBACK written to the socket, a hand-off to the committer that reads
// the clock, a packet read in mochi's client loop, and the GC's worker.
const perfScript = `fieldgate 11064  2071.919595:    1001001 cpu-clock:ppp: 
	           87306 internal/poll.runtime_pollReset+0x6 (/tmp/pf/fieldgate)
	           ddf75 internal/poll.(*FD).Write+0xf5 (/tmp/pf/fieldgate)
	          3e3ee2 fieldgate/broker.(*guardConn).Write+0xc2 (/tmp/pf/fieldgate)
	          341d1a github.com/mochi-mqtt/server/v2.(*Client).WritePacket.func1+0x3da (/tmp/pf/fieldgate)
	          3e817f fieldgate/broker.(*hook).finish+0x19f (/tmp/pf/fieldgate)
	          3d8b26 fieldgate/broker.(*ackQueue).writer+0x86 (/tmp/pf/fieldgate)
	           8f8a1 runtime.goexit.abi0+0x1 (/tmp/pf/fieldgate)

fieldgate 11061  2071.921267:    1001001 cpu-clock:ppp: 
	             b66 __vdso_clock_gettime+0x56 ([vdso])
	           b6b93 time.Now+0x13 (/tmp/pf/fieldgate)
	          38f878 fieldgate/store.(*committer).send+0x178 (/tmp/pf/fieldgate)
	          387dba fieldgate/store.(*Store).AppendThen+0xba (/tmp/pf/fieldgate)
	          3e7ec3 fieldgate/broker.(*hook).storeThen+0x3c3 (/tmp/pf/fieldgate)
	          3e629e fieldgate/broker.(*hook).OnPublish+0x11e (/tmp/pf/fieldgate)
	          34ee8e github.com/mochi-mqtt/server/v2.(*Server).processPublish+0x6ce (/tmp/pf/fieldgate)
	          340867 github.com/mochi-mqtt/server/v2.(*Client).Read+0x1a7 (/tmp/pf/fieldgate)
	           8f8a1 runtime.goexit.abi0+0x1 (/tmp/pf/fieldgate)

fieldgate 11061  2071.923984:    1001001 cpu-clock:ppp: 
	          340835 github.com/mochi-mqtt/server/v2.(*Client).Read+0x175 (/tmp/pf/fieldgate)
	          3e3cb5 fieldgate/broker.(*guardedListener).Serve.func1+0x175 (/tmp/pf/fieldgate)
	           8f8a1 runtime.goexit.abi0+0x1 (/tmp/pf/fieldgate)

fieldgate 11070  2071.930000:    1001001 cpu-clock:ppp: 
	ffffffff813aecd3 finish_task_switch.isra.0+0x93 ([kernel.kallsyms])
	           5a1b2 runtime.gcDrain+0x112 (/tmp/pf/fieldgate)
	           5a000 runtime.gcBgMarkWorker+0x40 (/tmp/pf/fieldgate)
	           8f8a1 runtime.goexit.abi0+0x1 (/tmp/pf/fieldgate)
`

// TestStageSharesChargeTheInnermostNamedFrame: each sample goes to the
// stage of the innermost frame a rule names (the syscall of a PUBACK to
// the PUBACK, the clock read to the committer hand-off, not to mochi or
// the hook that called them), and a stack no rule names to the runtime's
// part it began in.
func TestStageSharesChargeTheInnermostNamedFrame(t *testing.T) {
	shares, n, err := stageShares(strings.NewReader(perfScript))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"PUBACK hand-off and write": 0.25, "committer hand-off and grouping": 0.25,
		"mochi: read, decode, dispatch": 0.25, stageGC: 0.25}
	if n != 4 || len(shares) != len(want) {
		t.Fatalf("%d samples, shares %v: want 4 samples, %v", n, shares, want)
	}
	for s, v := range want {
		if math.Abs(shares[s]-v) > 1e-9 {
			t.Errorf("%s: %.2f, want %.2f (all: %v)", s, shares[s], v, shares)
		}
	}
	b := newBreakdown(report{Target: targetFieldgate, Clients: 50, QoS: 1, ReadingsPerSec: 20000, Process: &procUsage{CPUPercent: 70}}, shares, n)
	if math.Abs(b.CPUus-35) > 1e-9 || math.Abs(b.Stages[stageGC]-8.75) > 1e-9 {
		t.Errorf("breakdown %+v: want 35 µs per reading, a quarter of it GC", b)
	}
}

// TestStageOfChargesSyscallsToTheirStage: the stacks of the three
// syscalls on a reading's path (trimmed from a real profile, leaf first)
// go to their stages, not to a helper's package the rules name more
// broadly (fieldgate/broker., fieldgate/store/wal.).
func TestStageOfChargesSyscallsToTheirStage(t *testing.T) {
	for _, c := range []struct {
		stage  string
		frames []string
	}{
		{"log sync (fdatasync)", []string{"iowrite16+0xc", "ext4_sync_file+0x1c5", "syscall.Syscall+0x46",
			"golang.org/x/sys/unix.Fdatasync+0x30", "fieldgate/store/wal.osFile.Sync.func1+0x28",
			"internal/poll.(*FD).RawControl+0x8c", "os.(*rawConn).Control+0x45", "fieldgate/store/wal.osFile.Sync+0x52",
			"fieldgate/store/wal.(*Log).Sync+0xf1", "fieldgate/store.(*committer).commit+0x7d1"}},
		{"mochi: read, decode, dispatch", []string{"do_syscall_64+0x46", "syscall.read+0x38", "internal/poll.(*FD).Read+0x21d",
			"net.(*conn).Read+0x45", "fieldgate/broker.(*guardConn).next+0x94", "fieldgate/broker.(*guardConn).Read+0x56",
			"bufio.(*Reader).fill+0x103", "github.com/mochi-mqtt/server/v2.(*Client).ReadFixedHeader+0x3b"}},
		{"PUBACK hand-off and write", []string{"tcp_sendmsg+0x2b", "syscall.Syscall+0x46", "golang.org/x/sys/unix.write+0x45",
			"fieldgate/broker.(*guardConn).rawWrite+0x28", "internal/poll.(*FD).RawWrite+0x106",
			"net.(*rawConn).Write+0x36", "fieldgate/broker.(*guardConn).tryWrite+0x18c", "fieldgate/broker.writePuback+0x105",
			"fieldgate/broker.(*hook).finish+0x274", "fieldgate/broker.(*ackQueue).complete+0x115",
			"fieldgate/store.(*committer).commit+0xc1f"}},
	} {
		if got := stageOf(c.frames); got != c.stage {
			t.Errorf("%s: charged to %q, want %q", c.frames[len(c.frames)/2], got, c.stage)
		}
	}
}
