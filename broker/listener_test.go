package broker

import (
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// flakyListener fails its first accepts as a process out of file
// descriptors does.
type flakyListener struct {
	net.Listener
	fails atomic.Int32
}

func (f *flakyListener) Accept() (net.Conn, error) {
	if f.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return f.Listener.Accept()
}

// TestAcceptSurvivesRunningOutOfDescriptors: mochi's listener returns from
// Serve on the first accept error, so a moment without file descriptors
// stopped MQTT for good. Ours backs off and takes the next connection.
func TestAcceptSurvivesRunningOutOfDescriptors(t *testing.T) {
	var errs atomic.Uint64
	l := &tcpListener{id: "tcp", address: "127.0.0.1:0", onErr: func(string, error, ...any) {}, errs: &errs}
	if err := l.Init(nil); err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: l.ln}
	fl.fails.Store(5)
	l.ln = fl
	got := make(chan net.Conn, 1)
	go l.Serve(func(_ string, c net.Conn) error { got <- c; return nil })
	defer l.Close(func(string) {})
	c, err := net.Dial("tcp", l.Address())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case s := <-got:
		_ = s.Close()
	case <-time.After(20 * time.Second):
		t.Fatal("no connection established after the accept errors")
	}
	if n := errs.Load(); n != 5 {
		t.Errorf("%d accept errors counted, want 5", n)
	}
}
