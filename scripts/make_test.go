// Package scripts holds the repository's scripts (test.sh, demo.sh); its
// tests check them and the Makefile targets that a user runs first.
package scripts

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// root is the repository's top directory (this package's parent).
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestMakeRunStopsOnSIGTERM: `make run` starts the coordinator, and a
// SIGTERM to make stops it: make passes SIGTERM to its child, which must be
// the server itself (`go run` does not pass it on and leaves the server
// running, holding the port, after make is gone).
func TestMakeRunStopsOnSIGTERM(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is not installed: %v", err)
	}
	dir := t.TempDir()
	cmd := exec.Command("make", "-s", "-C", root(t), "run", "BIN="+filepath.Join(dir, "xact"))
	// A free port and a private data directory (the server reads XACT_*).
	cmd.Env = append(os.Environ(), "XACT_LISTEN=127.0.0.1:0", "XACT_DATA_DIR="+filepath.Join(dir, "data"))
	// Its own process group, so that whatever it leaves running is found
	// and killed at the end.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// An *os.File, not StdoutPipe: a server left behind keeps the pipe
	// open, and Wait must not wait for that.
	out, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = w, os.Stderr
	err = cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				addrc <- addr
			}
		}
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-exited:
		t.Fatalf("make run exited before the server listened: %v", err)
	case <-time.After(3 * time.Minute): // includes building bin/xact
		t.Fatal("make run: the server did not listen within 3 minutes")
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("make did not exit within 30s of SIGTERM")
	}
	// The server must be gone with it: its port refuses connections.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("the server still accepts connections on %s 10s after make exited", addr)
			}
			return // refused: stopped
		}
		c.Close()
		time.Sleep(100 * time.Millisecond)
	}
}
