package pgtest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/xact-io/xact/internal/proctest"
)

// ErrNotInstalled reports that the PostgreSQL server binaries were not found.
var ErrNotInstalled = errors.New("pgtest: the PostgreSQL server binaries postgres and initdb were not found " +
	"(looked in " + pgLib + "/*/bin and PATH); run `make test`, which installs the Debian package postgresql " +
	"(apt-get install postgresql), or set " + EnvDSN + " to the URL of a server to use")

// pgLib holds the server binaries of the Debian packages, one directory
// per major version.
const pgLib = "/usr/lib/postgresql"

// Options configure a private server started by Start.
type Options struct {
	// Dir holds the server's data directory, socket and log. It is created
	// if missing; an existing data directory is reused. When the process
	// runs as root, Dir is given to the unprivileged user the server runs
	// as, which must be able to reach it (its parents must be searchable
	// by others, as the temporary directory is).
	Dir string
	// Port is the loopback TCP port to listen on; 0 picks a free one.
	Port int
	// Detach starts the server in its own session so that it outlives the
	// calling process (for cmd/postgres). Without it the server is killed
	// when the calling process dies, even by SIGKILL.
	Detach bool
	// Durable makes a commit wait until its WAL is flushed to disk
	// (synchronous_commit=on, PostgreSQL's default). Without it commits
	// return before the flush (synchronous_commit=off): a crash of the
	// machine may lose the last commits, but never corrupts the data, and
	// unit tests run faster. fsync stays on in both cases, so the server
	// does the I/O a production server does.
	Durable bool
}

// Server is a private PostgreSQL server listening on 127.0.0.1.
type Server struct {
	dir  string
	port int
	pid  int
	// done is closed when the server process has exited (only for servers
	// this process started).
	done chan struct{}
	proc *os.Process
}

// Files inside Options.Dir.
const (
	dataDir = "data"         // PGDATA, with postmaster.pid while the server runs
	logFile = "postgres.log" // the server's standard output and error
)

// superuser is the superuser initdb creates; authentication is trust.
const superuser = "postgres"

// findBin returns the directory with postgres and initdb: the newest
// version's bin directory under root, or else the first directory in the
// PATH list path holding both.
func findBin(root, path string) (string, error) {
	has := func(dir string) bool {
		for _, n := range []string{"postgres", "initdb"} {
			fi, err := os.Stat(filepath.Join(dir, n))
			if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	versions, _ := filepath.Glob(filepath.Join(root, "*", "bin"))
	slices.SortFunc(versions, func(a, b string) int {
		return compareVersions(filepath.Base(filepath.Dir(a)), filepath.Base(filepath.Dir(b)))
	})
	for i := len(versions) - 1; i >= 0; i-- {
		if has(versions[i]) {
			return versions[i], nil
		}
	}
	for _, d := range filepath.SplitList(path) {
		if d != "" && has(d) {
			return d, nil
		}
	}
	return "", ErrNotInstalled
}

// compareVersions orders version directory names such as 9.6, 15 and 17
// numerically; a name that is not a version sorts first.
func compareVersions(a, b string) int {
	parse := func(s string) []int {
		var v []int
		for _, f := range strings.Split(s, ".") {
			n, err := strconv.Atoi(f)
			if err != nil {
				return nil
			}
			v = append(v, n)
		}
		return v
	}
	return slices.Compare(parse(a), parse(b))
}

// serverCredential returns the user to run initdb and the server as: nil
// (this process's user) unless this process is root, which PostgreSQL
// refuses; then the user postgres of the Debian package, or nobody.
func serverCredential() (*syscall.Credential, string, error) {
	if os.Geteuid() != 0 {
		return nil, "", nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		// An empty Groups drops root's supplementary groups.
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, name, nil
	}
	return nil, "", errors.New("pgtest: running as root, and neither the user postgres nor nobody exists to run PostgreSQL as " +
		"(it refuses to run as root); install the Debian package postgresql, which creates postgres")
}

// reachable reports whether the user cred can search every parent of dir.
func reachable(dir string, cred *syscall.Credential, name string) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		bit := os.FileMode(0o001)
		switch {
		case st.Uid == cred.Uid:
			bit = 0o100
		case st.Gid == cred.Gid:
			bit = 0o010
		}
		if fi.Mode().Perm()&bit == 0 {
			return fmt.Errorf("pgtest: PostgreSQL runs as the user %s (it refuses to run as root), which cannot reach %s: "+
				"%s is mode %v; put the server's directory where others may search, such as directly in %s",
				name, dir, p, fi.Mode().Perm(), os.TempDir())
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// childEnv is the environment of initdb and postgres: this process's, less
// the PG variables (PGDATA, PGPORT, ...) that name another server.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

// Start initialises opts.Dir if needed, starts postgres on a loopback port
// and waits until it accepts connections for the user postgres.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("pgtest: Options.Dir is empty")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	bin, err := findBin(pgLib, os.Getenv("PATH"))
	if err != nil {
		return nil, err
	}
	cred, name, err := serverCredential()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if cred != nil {
		if err := reachable(dir, cred, name); err != nil {
			return nil, err
		}
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, dataDir, "PG_VERSION")); err != nil {
		if err := initdb(ctx, bin, dir, cred); err != nil {
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
		s, err := launch(ctx, bin, dir, port, cred, opts)
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

func initdb(ctx context.Context, bin, dir string, cred *syscall.Credential) error {
	data := filepath.Join(dir, dataDir)
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", data,
		"-U", superuser,
		"--auth=trust",
		"-E", "UTF8",
		"--locale=C.UTF-8",
		// initdb's own files need not reach the disk (a crash during a test
		// run loses the run anyway); the server keeps fsync on.
		"--no-sync",
	)
	cmd.Dir = dir
	cmd.Env = childEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := cmd.CombinedOutput()
	if err != nil {
		_ = os.RemoveAll(data)
		return fmt.Errorf("pgtest: %s: %w\n%s", cmd.Path, err, tail(out, 2000))
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// socketDir returns the directory for the server's unix socket: dir, or
// none ("") if the socket's path would not fit in sun_path (108 bytes).
// The tests connect over TCP; the socket is for psql -h dir, and is never
// in /var/run/postgresql, where a system server has its own.
func socketDir(dir string, port int) string {
	if len(filepath.Join(dir, ".s.PGSQL."+strconv.Itoa(port)+".lock")) < 100 {
		return dir
	}
	return ""
}

func launch(ctx context.Context, bin, dir string, port int, cred *syscall.Credential, opts Options) (*Server, error) {
	data := filepath.Join(dir, dataDir)
	args := []string{
		"-D", data,
		"-p", strconv.Itoa(port),
		"-k", socketDir(dir, port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=on",
		"-c", "max_connections=500",
		"-c", "logging_collector=off",
	}
	if opts.Durable {
		args = append(args, "-c", "synchronous_commit=on")
	} else {
		args = append(args, "-c", "synchronous_commit=off")
	}
	daemon := filepath.Join(bin, "postgres")
	// Truncate the log so that a failure report shows this start only.
	out, err := os.OpenFile(filepath.Join(dir, logFile), os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	defer out.Close()

	s := &Server{dir: dir, port: port, done: make(chan struct{})}
	newCmd := func(attr *syscall.SysProcAttr) *exec.Cmd {
		cmd := exec.Command(daemon, args...)
		cmd.Dir = dir
		cmd.Env = childEnv()
		cmd.Stdout, cmd.Stderr = out, out
		attr.Credential = cred
		cmd.SysProcAttr = attr
		return cmd
	}
	if opts.Detach {
		cmd := newCmd(&syscall.SysProcAttr{Setsid: true})
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("pgtest: start %s: %w", daemon, err)
		}
		s.proc, s.pid = cmd.Process, cmd.Process.Pid
		// Reap the child if it dies while we wait for it; after Start
		// returns, it is re-parented when this process exits.
		go func() { _ = cmd.Wait(); close(s.done) }()
	} else {
		started := make(chan error, 1)
		// Pdeathsig fires when the thread that forked the child exits, so
		// fork from a goroutine that keeps its thread for the server's life.
		// (Go sets it after changing the credentials, which would clear it.)
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cmd := newCmd(&syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL})
			if err := cmd.Start(); err != nil {
				started <- fmt.Errorf("pgtest: start %s: %w", daemon, err)
				return
			}
			s.proc, s.pid = cmd.Process, cmd.Process.Pid
			started <- nil
			_ = cmd.Wait()
			close(s.done)
		}()
		if err := <-started; err != nil {
			return nil, err
		}
	}
	if err := s.waitReady(ctx, 90*time.Second); err != nil {
		_ = s.Stop(context.Background())
		return nil, err
	}
	return s, nil
}

// waitReady connects until the server answers, and checks that the one
// answering is this server, not another that took the port.
func (s *Server) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		err := s.ping(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("pgtest: postgres exited during start-up; %s:\n%s",
				filepath.Join(s.dir, logFile), s.log())
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres did not accept connections within %v (last error: %v); %s:\n%s",
				limit, err, filepath.Join(s.dir, logFile), s.log())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *Server) ping(ctx context.Context) error {
	db, err := sql.Open("pgx", s.DSN()+"&connect_timeout=2")
	if err != nil {
		return err
	}
	defer db.Close()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var data string
	if err := db.QueryRowContext(pctx, "SELECT current_setting('data_directory')").Scan(&data); err != nil {
		return err
	}
	if want := filepath.Join(s.dir, dataDir); filepath.Clean(data) != want {
		return fmt.Errorf("port %d is served from %s, not %s", s.port, data, want)
	}
	return nil
}

func (s *Server) log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, logFile))
	if bytes.Contains(b, []byte("in use")) {
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

// DSN returns the URL of the database postgres on the server, for the
// superuser postgres: postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable.
func (s *Server) DSN() string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", superuser, s.port)
}

// Stop shuts the server down: a fast shutdown (SIGINT: clients are
// disconnected, the data is checkpointed), then SIGKILL if it has not
// exited within 30 seconds or when ctx ends.
func (s *Server) Stop(ctx context.Context) error {
	if s.proc == nil {
		return nil
	}
	if err := s.proc.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("pgtest: stop postgres (pid %d): %w", s.pid, err)
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
	return fmt.Errorf("pgtest: postgres (pid %d) did not stop on SIGINT; killed", s.pid)
}

// Attach returns the server running from dir (started by an earlier Start
// with Detach), as its postmaster.pid records it, if its process is still
// alive.
func Attach(dir string) (*Server, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, dataDir, "postmaster.pid"))
	if err != nil {
		return nil, fmt.Errorf("pgtest: no server running from %s: %w", dir, err)
	}
	// Lines: pid, data directory, start time, port, socket directory, ...
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return nil, fmt.Errorf("pgtest: %s/%s/postmaster.pid is incomplete", dir, dataDir)
	}
	pid, err1 := strconv.Atoi(strings.TrimSpace(lines[0]))
	port, err2 := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pgtest: %s/%s/postmaster.pid is malformed", dir, dataDir)
	}
	if !ownedBy(pid, dir) {
		return nil, fmt.Errorf("pgtest: process %d is not the postgres of %s", pid, dir)
	}
	return &Server{dir: dir, port: port, pid: pid}, nil
}

// StopDetached stops the server running from dir (see Attach): a fast
// shutdown, then SIGKILL after timeout. Only the process whose command
// line names dir's data directory is signalled.
func StopDetached(dir string, timeout time.Duration) error {
	s, err := Attach(dir)
	if err != nil {
		return err
	}
	if err := proctest.Stop(s.pid, serverArg(dir), syscall.SIGINT, timeout); err != nil {
		return fmt.Errorf("pgtest: postgres: %w", err)
	}
	return nil
}

// ownedBy reports whether pid is alive and is the postgres serving dir.
func ownedBy(pid int, dir string) bool { return proctest.Runs(pid, serverArg(dir)) }

// serverArg is the argument that names dir's data directory on the
// postgres command line ("-D" and the directory are two arguments; the
// directory alone is distinctive).
func serverArg(dir string) string { return filepath.Join(dir, dataDir) }
