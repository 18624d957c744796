package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"fieldgate/cmd/fieldgate/daemontest"
)

// TestOneHostCannotRestartTheGateway is the attack of a host on the LAN
// with no credentials: it keeps the API's connection slots full of idle
// sockets (some silent, some idle after one request) and opens live
// streams. Before, the API had one global cap, Accept blocked at it, and
// the watchdog's health check was a GET through that listener: the checks
// timed out, the pings stopped, and systemd would restart the gateway
// again and again. Now one address gets a share of the cap (the rest are
// closed at once), a technician on another address is served, the
// watchdog keeps being fed, and /status and /metrics report the refusals.
func TestOneHostCannotRestartTheGateway(t *testing.T) {
	bin := daemontest.Build(t)
	dir := t.TempDir()
	sock, want := daemontest.ListenNotify(t, dir)
	cmd := exec.Command(bin, "-config", mqttConfig(t, dir))
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=1000000")
	d := daemontest.StartCmd(t, cmd)
	want("READY=1")
	api := strings.TrimPrefix(d.API, "http://")

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	attacker := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	for i := range 200 { // each slot redials as soon as the server drops it
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				c, err := attacker.DialContext(ctx, "tcp", api)
				if err != nil {
					continue
				}
				if i%2 == 0 { // one request, then idle on the kept-alive connection
					fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", api)
				}
				go func() { <-ctx.Done(); _ = c.Close() }()
				_, _ = bufio.NewReader(c).ReadString(0) // until the server closes it
				_ = c.Close()
			}
		}()
	}
	// Live streams from one address (another, whose connections are not
	// all taken): a share of them, the rest refused with an answer.
	streamer := &websocket.Dialer{NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}}).DialContext}
	streams := 0
	for range 10 {
		ws, res, err := streamer.Dial("ws://"+api+"/api/v1/ws", nil)
		if err == nil {
			streams++
			defer ws.Close()
			continue
		}
		if res == nil || (res.StatusCode != http.StatusTooManyRequests && res.StatusCode != http.StatusServiceUnavailable) {
			t.Fatalf("a live stream past the share: %v (%v)", err, res)
		}
	}
	if streams > 4 {
		t.Errorf("one address opened %d live streams, want at most 4", streams)
	}

	// The watchdog goes on being fed: ten pings, five seconds of attack.
	for range 10 {
		want("WATCHDOG=1")
	}
	// A technician on another address is served.
	tech := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	get := func(path string) string {
		res, err := tech.Get(d.API + path)
		if err != nil {
			t.Fatalf("a technician on another address was not served %s: %v", path, err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %v", path, res.StatusCode, err)
		}
		return string(b)
	}
	for range 5 {
		if body := get("/api/v1/status"); !strings.Contains(body, "turned connections away") {
			t.Errorf("/status does not report the refused connections: %s", body)
		}
	}
	if !regexp.MustCompile(`(?m)^fieldgate_api_refused_total\{reason="address"\} [1-9]`).MatchString(get("/metrics")) {
		t.Error("fieldgate_api_refused_total{reason=\"address\"} did not count the refused connections")
	}
}
