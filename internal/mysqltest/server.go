package mysqltest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/xact-io/xact/internal/proctest"
)

// ErrNotInstalled reports that the MariaDB server binaries were not found.
var ErrNotInstalled = errors.New("mysqltest: mariadbd not found (looked in PATH, /usr/sbin, /usr/local/sbin, /usr/libexec); " +
	"run `make test`, which installs mariadb-server, or set " + EnvDSN + " to the DSN of a server to use")

// Options configure a private server started by Start.
type Options struct {
	// Dir holds the server's data directory, socket, pid file and logs. It
	// is created if missing; an existing data directory is reused.
	Dir string
	// Port is the loopback TCP port to listen on; 0 picks a free one.
	Port int
	// Detach starts the server in its own session so that it outlives the
	// calling process (for cmd/mariadb). Without it the server is killed
	// when the calling process dies, even by SIGKILL.
	Detach bool
	// Durable keeps InnoDB's default flush-at-commit; without it the server
	// trades crash durability for speed, which is what unit tests want.
	Durable bool
}

// Server is a private mariadbd listening on 127.0.0.1.
type Server struct {
	dir  string
	port int
	pid  int
	// done is closed when the server process has exited (only for servers
	// this process started and did not detach).
	done chan struct{}
	proc *os.Process
}

// Files inside Options.Dir.
const (
	dataDir  = "data"
	pidFile  = "mariadbd.pid"
	portFile = "port"
	errLog   = "error.log"
	outLog   = "mariadbd.out"
)

// binary finds the first of names in PATH or in the usual sbin directories.
func binary(names ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
		for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/libexec", "/usr/local/bin", "/usr/bin"} {
			p := filepath.Join(d, n)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", ErrNotInstalled
}

// Start initialises opts.Dir if needed, starts mariadbd on a loopback port
// and waits until it accepts connections as root with an empty password.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("mysqltest: Options.Dir is empty")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("mysqltest: %w", err)
	}
	daemon, err := binary("mariadbd", "mysqld")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("mysqltest: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, dataDir, "mysql")); err != nil {
		if err := install(ctx, dir); err != nil {
			return nil, err
		}
	}
	// A free port can be taken by someone else between probing and binding;
	// retry a few times with a new one.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, err
			}
		}
		s, err := launch(ctx, daemon, dir, port, opts)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if opts.Port != 0 || ctx.Err() != nil || !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	return nil, lastErr
}

func install(ctx context.Context, dir string) error {
	tool, err := binary("mariadb-install-db", "mysql_install_db")
	if err != nil {
		return err
	}
	args := []string{
		"--no-defaults",
		"--auth-root-authentication-method=normal",
		"--skip-test-db",
		"--skip-name-resolve",
		"--datadir=" + filepath.Join(dir, dataDir),
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	cmd := exec.CommandContext(ctx, tool, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		_ = os.RemoveAll(filepath.Join(dir, dataDir))
		return fmt.Errorf("mysqltest: %s: %w\n%s", tool, err, tail(out, 2000))
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("mysqltest: pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// socketPath returns a unix socket path short enough for sun_path (108
// bytes); mariadbd needs one even though tests use TCP, and its default
// would collide with a system server.
func socketPath(dir string) string {
	p := filepath.Join(dir, "s.sock")
	if len(p) < 100 {
		return p
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("xact-mariadb-%d-%d.sock", os.Getpid(), time.Now().UnixNano()))
}

func launch(ctx context.Context, daemon, dir string, port int, opts Options) (*Server, error) {
	_ = os.Remove(filepath.Join(dir, pidFile))
	args := []string{
		"--no-defaults",
		"--datadir=" + filepath.Join(dir, dataDir),
		"--tmpdir=" + filepath.Join(dir, "tmp"),
		"--socket=" + socketPath(dir),
		"--pid-file=" + filepath.Join(dir, pidFile),
		"--log-error=" + filepath.Join(dir, errLog),
		"--port=" + strconv.Itoa(port),
		"--bind-address=127.0.0.1",
		"--skip-name-resolve",
		"--character-set-server=utf8mb4",
		"--collation-server=utf8mb4_unicode_ci",
		"--max-connections=1000",
		"--innodb-buffer-pool-size=128M",
	}
	if !opts.Durable {
		args = append(args, "--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0")
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	out, err := os.OpenFile(filepath.Join(dir, outLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("mysqltest: %w", err)
	}
	defer out.Close()
	// Truncate the error log so that a failure report shows this start only.
	_ = os.WriteFile(filepath.Join(dir, errLog), nil, 0o600)

	s := &Server{dir: dir, port: port}
	started := make(chan error, 1)
	if opts.Detach {
		cmd := exec.Command(daemon, args...)
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("mysqltest: start %s: %w", daemon, err)
		}
		s.proc = cmd.Process
		s.pid = cmd.Process.Pid
		s.done = make(chan struct{})
		// Reap the child if it dies while we wait for it; after Start
		// returns, it is re-parented when this process exits.
		go func() { _ = cmd.Wait(); close(s.done) }()
	} else {
		s.done = make(chan struct{})
		// Pdeathsig fires when the thread that forked the child exits, so
		// fork from a goroutine that keeps its thread for the server's life.
		go func() {
			runtime.LockOSThread()
			cmd := exec.Command(daemon, args...)
			cmd.Stdout, cmd.Stderr = out, out
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			if err := cmd.Start(); err != nil {
				started <- fmt.Errorf("mysqltest: start %s: %w", daemon, err)
				runtime.UnlockOSThread()
				return
			}
			s.proc = cmd.Process
			s.pid = cmd.Process.Pid
			started <- nil
			_ = cmd.Wait()
			close(s.done)
			runtime.UnlockOSThread()
		}()
		if err := <-started; err != nil {
			return nil, err
		}
	}
	if err := s.waitReady(ctx, 90*time.Second); err != nil {
		_ = s.Stop(context.Background())
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, portFile), []byte(strconv.Itoa(port)+"\n"), 0o600); err != nil {
		_ = s.Stop(context.Background())
		return nil, fmt.Errorf("mysqltest: %w", err)
	}
	return s, nil
}

func (s *Server) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cfg := s.Config()
	cfg.Timeout = time.Second
	for {
		err := ping(ctx, cfg)
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("mysqltest: mariadbd exited during start-up; %s:\n%s",
				filepath.Join(s.dir, errLog), s.errorLog())
		case <-ctx.Done():
			return fmt.Errorf("mysqltest: mariadbd did not accept connections within %v (last error: %v); %s:\n%s",
				limit, err, filepath.Join(s.dir, errLog), s.errorLog())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func ping(ctx context.Context, cfg *mysql.Config) error {
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(c)
	defer db.Close()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return db.PingContext(pctx)
}

func (s *Server) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, errLog))
	if strings.Contains(string(b), "in use") || strings.Contains(string(b), "Address already") {
		return "port in use\n" + tail(b, 3000)
	}
	return tail(b, 3000)
}

func tail(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Port returns the server's TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// Dir returns the directory holding the server's files.
func (s *Server) Dir() string { return s.dir }

// Config returns a driver configuration for root on the server, with no
// database selected.
func (s *Server) Config() *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User = "root"
	cfg.Net = "tcp"
	cfg.Addr = "127.0.0.1:" + strconv.Itoa(s.port)
	return cfg
}

// DSN returns the DSN of Config.
func (s *Server) DSN() string { return s.Config().FormatDSN() }

// Stop shuts the server down: SIGTERM, then SIGKILL if it has not exited
// within 30 seconds or when ctx ends.
func (s *Server) Stop(ctx context.Context) error {
	if s.proc == nil {
		return nil
	}
	if err := s.proc.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("mysqltest: stop mariadbd (pid %d): %w", s.pid, err)
	}
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-s.done:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	_ = s.proc.Kill()
	<-s.done
	return fmt.Errorf("mysqltest: mariadbd (pid %d) did not stop on SIGTERM; killed", s.pid)
}

// Attach returns the server recorded in dir by an earlier Start with
// Detach, if its process is still alive.
func Attach(dir string) (*Server, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("mysqltest: %w", err)
	}
	pid, err := readInt(filepath.Join(dir, pidFile))
	if err != nil {
		return nil, fmt.Errorf("mysqltest: no server recorded in %s: %w", dir, err)
	}
	port, err := readInt(filepath.Join(dir, portFile))
	if err != nil {
		return nil, fmt.Errorf("mysqltest: no server recorded in %s: %w", dir, err)
	}
	if !ownedBy(pid, dir) {
		return nil, fmt.Errorf("mysqltest: process %d is not the mariadbd of %s", pid, dir)
	}
	return &Server{dir: dir, port: port, pid: pid}, nil
}

// StopDetached stops the server recorded in dir (see Attach): SIGTERM, then
// SIGKILL after timeout. Only the process whose command line names dir's
// data directory is signalled.
func StopDetached(dir string, timeout time.Duration) error {
	s, err := Attach(dir)
	if err != nil {
		return err
	}
	if err := proctest.Stop(s.pid, serverArg(dir), syscall.SIGTERM, timeout); err != nil {
		return fmt.Errorf("mysqltest: mariadbd: %w", err)
	}
	return nil
}

// ownedBy reports whether pid is alive and is the mariadbd serving dir.
func ownedBy(pid int, dir string) bool { return proctest.Runs(pid, serverArg(dir)) }

// serverArg is the argument that names dir's data directory on the
// mariadbd command line.
func serverArg(dir string) string { return "--datadir=" + filepath.Join(dir, dataDir) }

func readInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}
