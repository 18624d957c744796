package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"fieldgate/cmd/fieldgate/testenv"

	"github.com/jackc/pgx/v5"
)

// Bouncer starts Debian's PgBouncer in front of s, in transaction pooling
// mode (what most managed PostgreSQL offers) with poolSize server
// connections per database, listening on a Unix socket of its own, and
// returns the connection string of database db through it. It stops at
// the end of tb. It skips tb without pgbouncer, unless
// FIELDGATE_REQUIRE_ALL=1.
func (s *Server) Bouncer(tb testing.TB, db string, poolSize int) string {
	tb.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/pgbouncer"); serr == nil {
			bin, err = "/usr/sbin/pgbouncer", nil
		}
	}
	if err != nil {
		testenv.Unavailable(tb, "pgtest: pgbouncer not found (apt-get install pgbouncer)")
	}
	dir, err := os.MkdirTemp("", "fieldgate-pgbouncer-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	ini := fmt.Sprintf(`[databases]
* = host=%s port=5432
[pgbouncer]
listen_addr =
listen_port = 6432
unix_socket_dir = %s
auth_type = trust
auth_file = %s/users.txt
pool_mode = transaction
default_pool_size = %d
max_client_conn = 500
ignore_startup_parameters = extra_float_digits
logfile = %s/pgbouncer.log
`, s.dir, dir, dir, poolSize, dir)
	files := map[string]string{"pgbouncer.ini": ini, "users.txt": `"postgres" ""` + "\n"}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	cmd := exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if s.cred != nil { // it refuses to run as root
		cmd.SysProcAttr.Credential = s.cred
		if err := os.Chmod(dir, 0o777); err != nil {
			tb.Fatal(err)
		}
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }() // the exit is seen through done
	tb.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGINT); <-done })
	url := fmt.Sprintf("host=%s port=6432 user=postgres dbname=%s sslmode=disable", dir, db)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		c, err := pgx.Connect(ctx, url)
		if err == nil {
			_ = c.Close(ctx) // it answered
			return url
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log")) // for the message
			tb.Fatalf("pgtest: pgbouncer exited at start:\n%s", log)
		case <-ctx.Done():
			tb.Fatal(errors.Join(ctx.Err(), err))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Shared returns the server NewDB's databases are on (started by the
// first NewDB).
func Shared() *Server { return shared.s }
