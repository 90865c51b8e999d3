// Package failpoint lets tests crash a process at a named point.
//
// A point is armed through the environment of the process under test:
//
//	XACT_FAILPOINTS="tc/commit/after-decision=crash;tc/phase2/after-send=crash@3"
//
// "crash" kills the process with SIGKILL the first time the point is hit;
// "crash@N" on the N-th hit. Nothing else is done to a process that arms
// no point: Hit costs one atomic load. The names of every point are listed
// in Points, so tests can walk the whole matrix.
package failpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Env is the environment variable that arms failpoints.
const Env = "XACT_FAILPOINTS"

// Points names every failpoint placed in the code, with what state the
// process is in when it dies there.
var Points = map[string]string{
	"tc/begin/after-store":        "the global is stored (relaxed), not yet answered (Begin) or registered into (lazy Begin)",
	"tc/register/after-store":     "the branch and its locks are durable, RegisterBranch not answered",
	"tc/decide/after-decision":    "the commit or rollback decision is durable, no phase-two action sent",
	"tc/phase2/after-send":        "a phase-two action was sent to the RM, its answer not recorded",
	"tc/phase2/after-branch-undo": "one branch's rollback is recorded, earlier branches not yet undone",
	"tc/phase2/before-finish":     "every branch answered DONE, the global not yet finished",
}

var (
	armed atomic.Bool
	mu    sync.Mutex
	plan  map[string]*point
)

type point struct {
	at   int // crash on this hit (1-based)
	hits int
}

func init() {
	if err := Arm(os.Getenv(Env)); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", Env, err)
		os.Exit(2)
	}
}

// Arm replaces the armed points with spec (the Env syntax). An unknown
// point name is an error, so a typo cannot silently disarm a test.
func Arm(spec string) error {
	p := map[string]*point{}
	for _, item := range strings.Split(spec, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, action, ok := strings.Cut(item, "=")
		if !ok {
			return fmt.Errorf("failpoint %q: want name=crash or name=crash@N", item)
		}
		if _, known := Points[name]; !known {
			return fmt.Errorf("unknown failpoint %q", name)
		}
		at := 1
		if n, ok := strings.CutPrefix(action, "crash@"); ok {
			v, err := strconv.Atoi(n)
			if err != nil || v < 1 {
				return fmt.Errorf("failpoint %q: bad hit count %q", name, n)
			}
			at = v
		} else if action != "crash" {
			return fmt.Errorf("failpoint %q: unknown action %q", name, action)
		}
		p[name] = &point{at: at}
	}
	mu.Lock()
	plan = p
	mu.Unlock()
	armed.Store(len(p) > 0)
	return nil
}

// Hit marks that the process reached the named point; if the point is
// armed for this hit, the process dies at once with SIGKILL, as it would
// in a power cut of the process (no deferred function runs, nothing is
// flushed).
func Hit(name string) {
	if !armed.Load() {
		return
	}
	mu.Lock()
	p, ok := plan[name]
	crash := false
	if ok {
		p.hits++
		crash = p.hits == p.at
	}
	mu.Unlock()
	if crash {
		fmt.Fprintf(os.Stderr, "failpoint %s: crashing\n", name)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is not delivered synchronously everywhere
	}
}
