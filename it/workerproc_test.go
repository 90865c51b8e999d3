package it

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xact-io/xact/internal/failpoint"
	"github.com/xact-io/xact/tm"
)

// workerProc is one bank worker process (see worker_test.go), started from
// the test binary itself.
type workerProc struct {
	t    *testing.T
	cfg  workerConfig
	env  []string
	cmd  *exec.Cmd
	addr string

	mu     sync.Mutex
	stderr bytes.Buffer
	xids   []string
	exited chan struct{}
}

// breakEnv arms switches (or points) in every worker of a run, on top of
// what each test arms: XACT_IT_BREAK=it/rm/skip-at-commit=on go test -run
// TestWorkerTransfers shows that test's I6 check failing.
const breakEnv = "XACT_IT_BREAK"

// httpc carries the XID of a request's context in the Xact-Xid header,
// beginning a lazily begun global first (tm.Transport).
var httpc = &http.Client{Transport: tm.Transport(nil)}

// startWorker starts a worker with cfg and extra environment (failpoints:
// failpoint.Env+"=..."), and waits until it serves.
func startWorker(t *testing.T, cfg workerConfig, env ...string) *workerProc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := &workerProc{t: t, cfg: cfg, env: env, exited: make(chan struct{})}
	w.cmd = exec.Command(self)
	// The worker arms what the test asks for, plus XACT_IT_BREAK (to see
	// any test's checks fail by hand), and never the test process's own
	// XACT_FAILPOINTS; it arms them itself, through fpEnv (armWorker).
	spec := ""
	var other []string
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, failpoint.Env+"="); ok {
			spec = v
		} else {
			other = append(other, e)
		}
	}
	if b := os.Getenv(breakEnv); b != "" {
		spec = strings.Trim(spec+";"+b, ";")
	}
	w.cmd.Env = append(os.Environ(), roleEnv+"=worker", workerEnv+"="+string(js), failpoint.Env+"=", fpEnv+"="+spec)
	w.cmd.Env = append(w.cmd.Env, other...)
	// Die with the test process, whatever kills it.
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	w.cmd.Stderr = &lockedWriter{mu: &w.mu, w: &w.stderr}
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	go func() { w.cmd.Wait(); close(w.exited) }()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if a, ok := strings.CutPrefix(line, "worker listening on "); ok {
				ready <- a
			} else if x, ok := strings.CutPrefix(line, "xid "); ok {
				w.mu.Lock()
				w.xids = append(w.xids, x)
				w.mu.Unlock()
			}
		}
	}()
	select {
	case w.addr = <-ready:
	case <-w.exited:
		t.Fatalf("worker exited at start:\n%s", w.log())
	case <-time.After(60 * time.Second):
		w.kill()
		t.Fatalf("worker did not start:\n%s", w.log())
	}
	t.Cleanup(func() {
		w.kill()
		if strings.Contains(w.log(), "WARNING: DATA RACE") {
			t.Errorf("data race in worker %s:\n%s", w.cfg.ClientID, w.log())
		} else if t.Failed() {
			t.Logf("worker %s log:\n%s", w.cfg.ClientID, tail(w.log(), 40))
		}
	})
	return w
}

func (w *workerProc) log() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stderr.String()
}

// lastXID is the last XID the worker printed for a transaction it began.
func (w *workerProc) lastXID() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.xids) == 0 {
		return ""
	}
	return w.xids[len(w.xids)-1]
}

// kill sends SIGKILL and waits until the process is gone.
func (w *workerProc) kill() {
	select {
	case <-w.exited:
		return
	default:
	}
	w.cmd.Process.Signal(syscall.SIGKILL)
	<-w.exited
}

func (w *workerProc) alive() bool {
	select {
	case <-w.exited:
		return false
	default:
		return true
	}
}

// wait waits for the process to exit on its own, up to d.
func (w *workerProc) wait(d time.Duration) bool {
	select {
	case <-w.exited:
		return true
	case <-time.After(d):
		return false
	}
}

// restart kills the worker and starts a new one with the same
// configuration and env (nil: the same env as before).
func (w *workerProc) restart(env []string) *workerProc {
	w.t.Helper()
	w.kill()
	if env == nil {
		env = w.env
	}
	return startWorker(w.t, w.cfg, env...)
}

// waitLog waits until the worker's stderr contains s, up to d.
func (w *workerProc) waitLog(s string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !strings.Contains(w.log(), s) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// resume releases the worker's paused failpoints.
func (w *workerProc) resume() { w.cmd.Process.Signal(syscall.SIGUSR1) }

// callError is a failed call: the worker's answer, or a transport error
// (Kind "transport": the worker died or could not be reached).
type callError struct {
	Kind string
	Msg  string
}

func (e *callError) Error() string { return e.Kind + ": " + e.Msg }

func kindOf(err error) string {
	var ce *callError
	if errors.As(err, &ce) {
		return ce.Kind
	}
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errForced):
		return "forced"
	}
	return "other"
}

// call posts body to the worker's path with ctx (whose XID goes along) and
// decodes the reply. A worker error is a *callError.
func (w *workerProc) call(ctx context.Context, path string, body any) (reply, error) {
	js, err := json.Marshal(body)
	if err != nil {
		return reply{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+w.addr+path, bytes.NewReader(js))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpc.Do(req)
	if err != nil {
		return reply{}, &callError{Kind: "transport", Msg: err.Error()}
	}
	defer resp.Body.Close()
	var rep reply
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return reply{}, &callError{Kind: "transport", Msg: fmt.Sprintf("status %s: %v", resp.Status, err)}
	}
	if rep.Error != "" && rep.XID == "" {
		return rep, &callError{Kind: rep.Kind, Msg: rep.Error}
	}
	return rep, nil
}
