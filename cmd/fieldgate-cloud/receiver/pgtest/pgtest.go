// Package pgtest runs a throwaway PostgreSQL server for tests and
// benchmarks: initdb into a fresh directory, a server listening only on a
// Unix socket in that directory (no port to collide with), stopped, killed
// and restarted at will.
//
// It uses Debian's postgresql binaries (found on PATH or under
// /usr/lib/postgresql/*/bin). As root it runs them as the postgres user (or
// nobody), since PostgreSQL refuses to run as root.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"fieldgate/cmd/fieldgate/testenv"

	"github.com/jackc/pgx/v5"
)

// ErrNoBinaries means PostgreSQL's server binaries are not installed.
var ErrNoBinaries = errors.New("pgtest: PostgreSQL's initdb and postgres were not found (apt-get install postgresql)")

// Server is one PostgreSQL server in its own directory.
type Server struct {
	bin  string // directory holding initdb and postgres
	dir  string // the data directory is dir/data, the socket is in dir
	cred *syscall.Credential
	log  *os.File

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exited
}

// BinDir returns the directory holding initdb and postgres.
func BinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("postgres"); err == nil {
			if real, err := filepath.EvalSymlinks(p); err == nil {
				p = real // the real directory also holds pg_basebackup
			}
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.Reverse(dirs) // newest version first
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

// Init creates a database cluster in a new directory under parent (the
// system's temporary directory when empty) and returns its server, not yet
// started.
func Init(parent string) (*Server, error) {
	s, err := newServer(parent)
	if err != nil {
		return nil, err
	}
	init := s.command("initdb", "-D", s.DataDir(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := init.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	return s, nil
}

// newServer makes a server's directory and log, owned by the user it runs
// as, without a cluster in it yet.
func newServer(parent string) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(parent, "fieldgate-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: dir}
	if os.Geteuid() == 0 {
		if s.cred, err = unprivileged(); err != nil {
			return nil, err
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, err
		}
		if err := os.Chown(dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return nil, err
		}
	}
	if s.log, err = os.Create(filepath.Join(dir, "server.log")); err != nil {
		return nil, err
	}
	if s.cred != nil {
		if err := s.log.Chown(int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Standby makes a streaming standby of s (pg_basebackup of the running
// server, replicating as application name, which synchronous_standby_names
// can name) in a new directory, not yet started. Its socket is in its own
// directory, on the same port.
func (s *Server) Standby(name string) (*Server, error) {
	st, err := newServer(filepath.Dir(s.dir))
	if err != nil {
		return nil, err
	}
	backup := st.command("pg_basebackup", "-D", st.DataDir(), "-X", "stream", "-R", "--no-sync",
		"-d", fmt.Sprintf("host=%s port=5432 user=postgres application_name=%s", s.dir, name))
	if out, err := backup.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgtest: pg_basebackup: %v\n%s", err, out)
	}
	return st, nil
}

// Promote makes a standby the primary and waits until it takes writes.
func (s *Server) Promote() error {
	if out, err := s.command("pg_ctl", "promote", "-w", "-D", s.DataDir()).CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: pg_ctl promote: %v\n%s", err, out)
	}
	return nil
}

// unprivileged is the user PostgreSQL runs as when the caller is root.
func unprivileged() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("pgtest: running as root and neither user postgres nor nobody exists")
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

// SocketDir is the directory of the server's Unix socket: the host of
// its connection strings.
func (s *Server) SocketDir() string { return s.dir }

// DataDir is the cluster's data directory.
func (s *Server) DataDir() string { return filepath.Join(s.dir, "data") }

// URL is a connection string for database db (postgres is always there).
func (s *Server) URL(db string) string {
	return fmt.Sprintf("host=%s port=5432 user=postgres dbname=%s sslmode=disable", s.dir, db)
}

// Start starts the server and waits until it accepts connections. Extra
// settings are passed as "name=value".
func (s *Server) Start(ctx context.Context, settings ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("pgtest: already running")
	}
	args := []string{"-D", s.DataDir(), "-k", s.dir, "-p", "5432", "-c", "listen_addresses="}
	for _, kv := range settings {
		args = append(args, "-c", kv)
	}
	cmd := s.command("postgres", args...)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	// Its own process group, so Kill reaches every backend; and it dies
	// with the test binary.
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }() // the exit is seen through done
	s.cmd, s.done = cmd, done
	for {
		c, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			return c.Close(ctx)
		}
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("pgtest: postgres exited at start:\n%s", s.Log())
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres not ready: %w (last: %v)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop shuts the server down the fast way (SIGINT: running transactions are
// rolled back, connections closed) and waits for it to exit.
func (s *Server) Stop() { s.signal(syscall.SIGINT) }

// Kill SIGKILLs the server and every backend, as a crash would.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	pid := s.cmd.Process.Pid
	if sig == syscall.SIGKILL {
		_ = syscall.Kill(-pid, sig) // the whole group; some may have exited
	} else {
		_ = s.cmd.Process.Signal(sig) // it may have exited already
	}
	<-s.done
	if sig == syscall.SIGKILL {
		// A new postmaster refuses to start while a backend of the old
		// one still holds its shared memory.
		for groupAlive(pid) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	s.cmd = nil
}

// groupAlive reports whether a process of group pgid is still running (not
// a zombie).
func groupAlive(pgid int) bool {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			return true
		}
	}
	return false
}

// Log returns the server's log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.log.Name()) // best effort, for error messages
	return string(b)
}

// Close stops the server and removes its directory.
func (s *Server) Close() error {
	s.Stop()
	_ = s.log.Close()
	return os.RemoveAll(s.dir)
}

// Start returns a running server for tb, stopped and removed at the end. It
// skips tb without PostgreSQL, unless FIELDGATE_REQUIRE_ALL=1 (as in CI),
// where it fails instead.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := Init("")
	if errors.Is(err, ErrNoBinaries) {
		testenv.Unavailable(tb, "%v", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() }) // a leftover temp dir is harmless
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	return s
}

// CreateDB creates a new empty database and returns its connection string.
func (s *Server) CreateDB(ctx context.Context, name string) (string, error) {
	c, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{strings.ToLower(name)}.Sanitize()); err != nil {
		return "", err
	}
	return s.URL(strings.ToLower(name)), nil
}

var shared struct {
	once sync.Once
	s    *Server
	err  error
	n    int
	mu   sync.Mutex
}

// NewDB returns the connection string of a new empty database on a server
// shared by the test binary (started by the first call; Main stops
// it). It skips tb without PostgreSQL, unless FIELDGATE_REQUIRE_ALL=1.
func NewDB(tb testing.TB) string {
	tb.Helper()
	shared.once.Do(func() {
		shared.s, shared.err = Init("")
		if shared.err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			shared.err = shared.s.Start(ctx)
		}
	})
	if errors.Is(shared.err, ErrNoBinaries) {
		testenv.Unavailable(tb, "%v", shared.err)
	}
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	shared.mu.Lock()
	shared.n++
	name := fmt.Sprintf("test%d", shared.n)
	shared.mu.Unlock()
	url, err := shared.s.CreateDB(context.Background(), name)
	if err != nil {
		tb.Fatal(err)
	}
	return url
}

// Main runs a test binary's tests, then stops the server NewDB started:
// call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	closeShared()
	os.Exit(code)
}

// closeShared stops the server NewDB started, if any.
func closeShared() {
	if shared.s != nil {
		_ = shared.s.Close() // a leftover temp dir is harmless
	}
}
