//go:build failpoints

package failpoint

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Env is the environment variable that arms failpoints.
const Env = "XACT_FAILPOINTS"

// Points names every failpoint placed in the library, with what state the
// process is in when it dies (or pauses) there. A test binary's own points
// are not listed here; see Register.
var Points = map[string]string{
	"tc/begin/after-store":        "the global is stored, not yet answered (Begin; relaxed write) or, on the lazy path, stored with its first branch, RegisterBranch not answered",
	"tc/register/after-store":     "the branch and its locks are durable, RegisterBranch not answered",
	"tc/decide/after-decision":    "the commit or rollback decision is durable, no phase-two action sent",
	"tc/phase2/after-send":        "a phase-two action was sent to the RM, its answer not recorded",
	"tc/phase2/after-branch-undo": "one branch's rollback is recorded, earlier branches not yet undone",
	"tc/phase2/before-finish":     "every branch answered DONE, the global not yet finished",

	// The RM: phase two in general (rm), AT (datasource), TCC (rm/tcc).
	"rm/phase2/after-handler": "a phase-two handler returned (any mode, any outcome), its result not yet sent to the TC",

	"datasource/commit/after-register":     "AT phase one: the branch and its locks are registered, the undo log not inserted, the local transaction open",
	"datasource/commit/after-undo-insert":  "AT phase one: the undo log is inserted in the open local transaction, not committed",
	"datasource/commit/after-local-commit": "AT phase one: the local transaction (change + undo log) committed, the caller not answered",
	"datasource/phase2/after-undo-delete":  "AT phase-two commit: the undo logs of a batch are deleted, the actions not answered",
	"datasource/rollback/after-replay":     "AT phase-two rollback: images replayed and the undo log deleted in the open local transaction, not committed",
	"datasource/rollback/after-marker":     "AT phase-two rollback found no undo log: the global-finished marker is inserted, not committed",
	"datasource/rollback/after-commit":     "AT phase-two rollback committed (replay or marker), the action not answered",

	"tcc/try/after-register":     "TCC phase one: the branch is registered, the business Try not run",
	"tcc/try/after-commit":       "TCC phase one: the Try and its fence row committed, the caller not answered",
	"tcc/confirm/after-business": "TCC Confirm: the business Confirm ran in the open fence transaction, the fence row not updated, nothing committed",
	"tcc/confirm/after-commit":   "TCC Confirm: the fence transaction committed (or found the branch confirmed), the action not answered",
	"tcc/cancel/after-business":  "TCC Cancel: the business Cancel ran in the open fence transaction, the fence row not updated, nothing committed",
	"tcc/cancel/after-commit":    "TCC Cancel: the fence transaction committed (or found the branch cancelled or suspended), the action not answered",
}

// Kind tells a point from a switch.
type Kind int

const (
	// Point is a crash point: placed with Hit, armed crash, crash@N, pause
	// or pause@N.
	Point Kind = iota + 1
	// Switch is a test-only switch that breaks an invariant on purpose:
	// asked with On, armed on or on@N.
	Switch
)

func (k Kind) String() string {
	switch k {
	case Point:
		return "point"
	case Switch:
		return "switch"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

var (
	armed   atomic.Bool
	mu      sync.Mutex
	plan    map[string]*point
	extra   = map[string]Kind{} // registered by a test binary
	release chan struct{}       // closed by SIGUSR1 to resume paused points
	usr1    chan os.Signal
)

// Register adds a test binary's own point or switch, with what it does,
// to the names Arm accepts. It is called from an init function of the test
// package that places the point (Hit) or asks for the switch (On), so the
// library does not list names only a test uses. A name that is already
// known, empty or contains '=', ';', '@' or a space, or has no
// description, is a programming error: Register panics.
//
// The environment (Env) is read before the test package's init runs, so a
// process that arms registered names calls Arm itself afterwards.
func Register(kind Kind, name, doc string) {
	if kind != Point && kind != Switch {
		panic(fmt.Sprintf("failpoint.Register(%v, %q): unknown kind", kind, name))
	}
	if name == "" || strings.ContainsAny(name, "=;@ ") || doc == "" {
		panic(fmt.Sprintf("failpoint.Register(%v, %q): bad name or no description", kind, name))
	}
	mu.Lock()
	defer mu.Unlock()
	if _, ok := kindOf(name); ok {
		panic(fmt.Sprintf("failpoint.Register(%v, %q): already known", kind, name))
	}
	extra[name] = kind
}

// kindOf reports the kind of a known name. mu is held.
func kindOf(name string) (Kind, bool) {
	if _, ok := Points[name]; ok {
		return Point, true
	}
	k, ok := extra[name]
	return k, ok
}

type point struct {
	action string // "crash", "pause" or "on"
	at     int    // fire on this hit (1-based); 0: every hit (switches armed "on")
	hits   int
}

func init() {
	if err := Arm(os.Getenv(Env)); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", Env, err)
		os.Exit(2)
	}
}

// Arm replaces the armed points and switches with spec (the Env syntax).
// An unknown name, or an action that does not fit its kind, is an error.
func Arm(spec string) error {
	mu.Lock()
	defer mu.Unlock()
	p := map[string]*point{}
	pause := false
	for _, item := range strings.Split(spec, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, action, ok := strings.Cut(item, "=")
		if !ok {
			return fmt.Errorf("failpoint %q: want name=action", item)
		}
		kind, ok := kindOf(name)
		if !ok {
			return fmt.Errorf("unknown failpoint %q", name)
		}
		isPoint, isSwitch := kind == Point, kind == Switch
		verb, n, hasN := strings.Cut(action, "@")
		at := 1
		if hasN {
			v, err := strconv.Atoi(n)
			if err != nil || v < 1 {
				return fmt.Errorf("failpoint %q: bad hit count %q", name, n)
			}
			at = v
		}
		switch {
		case isPoint && (verb == "crash" || verb == "pause"):
		case isSwitch && verb == "on":
			if !hasN {
				at = 0
			}
		case isPoint:
			return fmt.Errorf("failpoint %q: unknown action %q (a point takes crash, crash@N, pause, pause@N)", name, action)
		default:
			return fmt.Errorf("failpoint %q: unknown action %q (a switch takes on or on@N)", name, action)
		}
		pause = pause || verb == "pause"
		p[name] = &point{action: verb, at: at}
	}
	plan = p
	if pause && usr1 == nil {
		release = make(chan struct{})
		usr1 = make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		go resumer(usr1)
	}
	armed.Store(len(p) > 0)
	return nil
}

// resumer releases every paused point on each SIGUSR1.
func resumer(c chan os.Signal) {
	for range c {
		mu.Lock()
		close(release)
		release = make(chan struct{})
		mu.Unlock()
	}
}

// fire counts a hit of name and reports the action to take now ("" for
// none).
func fire(name string) string {
	mu.Lock()
	defer mu.Unlock()
	p, ok := plan[name]
	if !ok {
		return ""
	}
	p.hits++
	if p.at == 0 || p.hits == p.at {
		return p.action
	}
	return ""
}

// Hit marks that the process reached the named point. If the point is
// armed to crash on this hit, the process dies at once with SIGKILL, as it
// would in a power cut of the process (no deferred function runs, nothing
// is flushed). If it is armed to pause, Hit blocks until the process gets
// SIGUSR1.
func Hit(name string) {
	if !armed.Load() {
		return
	}
	switch fire(name) {
	case "crash":
		fmt.Fprintf(os.Stderr, "failpoint %s: crashing\n", name)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is not delivered synchronously everywhere
	case "pause":
		mu.Lock()
		wait := release
		mu.Unlock()
		fmt.Fprintf(os.Stderr, "failpoint %s: paused\n", name)
		<-wait
		fmt.Fprintf(os.Stderr, "failpoint %s: resumed\n", name)
	}
}

// On reports whether the named switch is on for this call. Only test code
// asks (the library has no switches); every switch is off unless armed.
func On(name string) bool {
	if !armed.Load() {
		return false
	}
	if fire(name) != "on" {
		return false
	}
	fmt.Fprintf(os.Stderr, "failpoint %s: on\n", name)
	return true
}
