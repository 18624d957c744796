package daemontest

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ListenNotify plays systemd's side of sd_notify: it returns the socket to
// put in NOTIFY_SOCKET (in dir) and a function that waits up to 30 s for a
// message starting with prefix, skipping the others, and returns it.
func ListenNotify(tb testing.TB, dir string) (string, func(prefix string) string) {
	tb.Helper()
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	msgs := make(chan string, 100)
	go func() {
		defer close(msgs)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return sock, func(prefix string) string {
		tb.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case m, open := <-msgs:
				if !open {
					tb.Fatalf("the notify socket closed before %q came", prefix)
				}
				if strings.HasPrefix(m, prefix) {
					return m
				}
			case <-timeout:
				tb.Fatalf("no %q from the daemon", prefix)
			}
		}
	}
}
