// Package proctest is what the test database helpers (internal/mysqltest,
// internal/pgtest) share about the server processes they start: telling
// whether a pid is still the server they started, and stopping it.
package proctest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// Runs reports whether pid is alive (not a zombie) and its command line
// holds arg as one whole argument. It guards against signalling an
// unrelated process that reused the pid.
func Runs(pid int, arg string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// A zombie has exited; it only waits to be reaped by its parent.
		if f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return false
		}
	}
	return bytes.Contains(append([]byte{0}, b...), []byte("\x00"+arg+"\x00"))
}

// Stop sends sig to pid, the process whose command line holds arg (see
// Runs), waits up to timeout for it to go, and then kills it with SIGKILL
// and says so. A process that is gone already is no error.
func Stop(pid int, arg string, sig syscall.Signal, timeout time.Duration) error {
	if err := syscall.Kill(pid, sig); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("stop pid %d: %w", pid, err)
	}
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		if !Runs(pid, arg) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	if Runs(pid, arg) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		return fmt.Errorf("pid %d did not stop on %v; killed", pid, sig)
	}
	return nil
}
