package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"

	"fieldgate/cmd/fieldgate/daemontest"
)

// BenchmarkBrokers starts fieldgate and Debian's mosquitto (persistence on)
// side by side on loopback, connects 200 idle clients to each and reads
// their RSS from /proc. The load comparison is fieldgate-bench compare's.
// Run with -bench Brokers/idle200 -benchtime 1x.
func BenchmarkBrokers(b *testing.B) {
	mosq, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, err = os.Stat("/usr/sbin/mosquitto"); err != nil {
			b.Skip("mosquitto not installed")
		}
		mosq = "/usr/sbin/mosquitto"
	}
	bin := filepath.Join(b.TempDir(), "fieldgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	dir := b.TempDir()
	fgPort, mqPort := freePort(b), freePort(b)
	cfg := filepath.Join(dir, "fieldgate.yaml")
	writeFileB(b, cfg, fmt.Sprintf("data_dir: %s/fg\nsensors: []\nlog:\n  level: warn\nmqtt:\n  listen: 127.0.0.1:%d\n  allow_anonymous: true\n  publish_rate: 100000\n  publish_burst: 100000\n  max_connections: 1000\n  max_pending: 1000\n", dir, fgPort))
	fg := exec.Command(bin, "-config", cfg)
	mqCfg := filepath.Join(dir, "mosquitto.conf")
	writeFileB(b, mqCfg, fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nmax_connections -1\n", mqPort, dir))
	mq := exec.Command(mosq, "-c", mqCfg)
	for _, c := range []*exec.Cmd{fg, mq} {
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() { _ = c.Process.Kill(); _ = c.Wait() }()
	}
	time.Sleep(time.Second)
	b.Run("idle200", func(b *testing.B) {
		for _, target := range []struct {
			name string
			port int
			pid  int
		}{{"fieldgate", fgPort, fg.Process.Pid}, {"mosquitto", mqPort, mq.Process.Pid}} {
			before, anon0 := rssKB(b, target.pid), anonKB(b, target.pid)
			cs := connectN(b, target.port, 200, "idle-"+target.name)
			time.Sleep(time.Second)
			after, anon1 := rssKB(b, target.pid), anonKB(b, target.pid)
			b.ReportMetric(float64(after)/1024, target.name+"-rss-MiB")
			b.ReportMetric(float64(after-before)/200, target.name+"-KiB/client")
			b.ReportMetric(float64(anon1-anon0)/200, target.name+"-anon-KiB/client")
			for _, c := range cs {
				c.Disconnect(0)
			}
		}
	})
}

func connectN(b *testing.B, port, n int, prefix string) []paho3.Client {
	cs := make([]paho3.Client, n)
	for i := range cs {
		id := fmt.Sprintf("%s-%d", prefix, i)
		o := paho3.NewClientOptions().AddBroker("tcp://127.0.0.1:" + strconv.Itoa(port)).SetClientID(id).
			SetAutoReconnect(false).SetKeepAlive(60 * time.Second).SetMaxResumePubInFlight(1)
		cs[i] = paho3.NewClient(o)
		if tok := cs[i].Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			b.Fatalf("connect %s: %v", id, tok.Error())
		}
	}
	return cs
}

// anonKB reads a process's anonymous resident memory (its heap and
// stacks, without mapped files) from /proc.
func anonKB(b *testing.B, pid int) int64 {
	kb, err := daemontest.ProcStatusKB(pid, "RssAnon")
	if err != nil {
		b.Fatal(err)
	}
	return kb
}

func rssKB(b *testing.B, pid int) int64 {
	kb, err := daemontest.ProcStatusKB(pid, "VmRSS")
	if err != nil {
		b.Fatal(err)
	}
	return kb
}

func freePort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func writeFileB(b *testing.B, path, content string) {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		b.Fatal(err)
	}
}
