package it

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xact-io/xact/internal/mysqltest"
	"github.com/xact-io/xact/internal/pgtest"
)

var xactBin string

func TestMain(m *testing.M) {
	// The test binary doubles as the suite's worker processes.
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runRole(role))
	}
	removeStaleBins()
	dir, err := os.MkdirTemp("", fmt.Sprintf("xact-it-bin-%d-", os.Getpid()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	xactBin = filepath.Join(dir, "xact")
	// Built in the main module, with its own go.sum: the binary's
	// dependencies are not this test module's. With the failpoints tag,
	// as this suite: its crash points exist only in such builds.
	build := exec.Command("go", "build", "-race", "-tags", "failpoints", "-o", xactBin, "./cmd/xact")
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building xact:", err)
		os.Exit(1)
	}
	// Main runs the tests and stops the private MariaDB, if one was
	// started (XACT_TEST_MYSQL_DSN names a shared one otherwise), then
	// exits: the binary's directory is removed by the next run
	// (removeStaleBins).
	os.Exit(mysqltest.Wrap(pgtest.Wrap(m.Run))())
}

// removeStaleBins removes the binary directories of earlier runs whose
// process is gone.
func removeStaleBins() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "xact-it-bin-*-*"))
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(d), "xact-it-bin-%d-", &pid); err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}

// tcProc is one `xact server` process.
type tcProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	dir  string
	args []string

	mu     sync.Mutex
	stderr bytes.Buffer
	exited chan struct{}
}

// startTC starts `xact server` on dataDir at addr ("127.0.0.1:0" for a free
// port) and waits until it listens.
func startTC(t *testing.T, dataDir, addr string, args ...string) *tcProc {
	t.Helper()
	return startTCEnv(t, dataDir, addr, nil, args...)
}

// startTCEnv is startTC with extra environment variables (failpoints).
func startTCEnv(t *testing.T, dataDir, addr string, env []string, args ...string) *tcProc {
	t.Helper()
	p := &tcProc{t: t, dir: dataDir, args: args, exited: make(chan struct{})}
	all := append([]string{"server", "--listen", addr, "--data-dir", dataDir, "--log-level", "debug",
		"--scan-interval", "50ms", "--retry-base", "50ms", "--retry-max", "500ms"}, args...)
	p.cmd = exec.Command(xactBin, all...)
	p.cmd.Env = append(os.Environ(), env...)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.stderr}
	var startErr error
	for i := 0; i < 50; i++ { // a killed predecessor's port may linger briefly
		if startErr = p.cmd.Start(); startErr == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if startErr != nil {
		t.Fatalf("start xact server: %v", startErr)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				lines <- a
			}
		}
	}()
	select {
	case p.addr = <-lines:
	case <-p.exited:
		t.Fatalf("xact server exited at start:\n%s", p.log())
	case <-time.After(30 * time.Second):
		p.kill()
		t.Fatalf("xact server did not start:\n%s", p.log())
	}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("xact server log (%s):\n%s", p.addr, tail(p.log(), 60))
		}
	})
	return p
}

func (p *tcProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *tcProc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// wait waits for the process to exit on its own and reports whether it
// did within d.
func (p *tcProc) wait(d time.Duration) bool {
	select {
	case <-p.exited:
		return true
	case <-time.After(d):
		return false
	}
}

// restart starts a new process on the same data directory and address.
func (p *tcProc) restart() *tcProc {
	p.t.Helper()
	p.kill()
	return startTC(p.t, p.dir, p.addr, p.args...)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
