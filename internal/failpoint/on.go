// Package failpoint lets tests crash or pause a process at a named point,
// and turn on test-only switches that break an invariant on purpose.
//
// Points and switches are armed through the environment of the process
// under test:
//
//	XACT_FAILPOINTS="tc/decide/after-decision=crash;tc/phase2/after-send=crash@3"
//
// Actions of a point (see Points; the code calls Hit):
//
//	crash     kill the process with SIGKILL the first time the point is hit
//	crash@N   ... on the N-th hit
//	pause     block the first hit until the process gets SIGUSR1 (the hit
//	          prints "failpoint NAME: paused" to stderr once it waits)
//	pause@N   ... the N-th hit
//
// Actions of a switch (see Switches; the code asks On):
//
//	on        On reports true every time
//	on@N      On reports true the N-th time only
//
// Nothing else is done to a process that arms nothing: Hit and On cost one
// atomic load. An unknown name, or an action that does not fit the name's
// kind, is refused at start-up (the process exits with status 2), so a typo
// cannot silently disarm a test, and a switch cannot be armed as a point or
// the other way round.
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

// Points names every failpoint placed in the code, with what state the
// process is in when it dies (or pauses) there.
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

	// The end-to-end tests' worker (it/).
	"it/worker/between-branches": "it/ bank worker: the first branch of a transfer committed locally, the second not begun",
}

// Switches names every test-only switch, with the invariant it breaks.
// They exist so that the end-to-end suite can show each of its invariant
// checks failing; only the it/ worker asks for them (On), and only tests
// dedicated to that arm them.
var Switches = map[string]string{
	"it/rm/skip-at-commit":     "AT phase-two commit answered DONE without deleting the undo log (breaks I6)",
	"it/rm/skip-at-rollback":   "AT phase-two rollback answered DONE without replaying the undo log (breaks I1, I6, the balance total)",
	"it/rm/commit-as-rollback": "AT phase-two commit run as a rollback: a committed branch's images are replayed (breaks I2)",
	"it/rm/drop-phase2":        "phase-two actions are swallowed, never answered (breaks I11 and keeps locks: I5)",
	"it/rm/skip-lock-check":    "QueryLocks answered 'free' without asking the TC: SELECT … FOR UPDATE ignores global locks (breaks the locked audit)",
	"it/rm/skip-register":      "RegisterBranch answered with a made-up branch id without asking the TC: no lock, no branch (breaks I4, I5 and 'no local commit without its global locks')",
	"it/tcc/no-fence":          "the worker's TCC resources run without the fence, with non-idempotent Confirm and Cancel (breaks I7)",
	"it/worker/no-funds-check": "the worker's debit does not check the balance (breaks 'no negative balance')",
	"it/worker/skip-ledger":    "the worker's AT debit writes no ledger row (breaks 'every balance matches its ledger')",
}

var (
	armed   atomic.Bool
	mu      sync.Mutex
	plan    map[string]*point
	release chan struct{} // closed by SIGUSR1 to resume paused points
	usr1    chan os.Signal
)

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
		_, isPoint := Points[name]
		_, isSwitch := Switches[name]
		if !isPoint && !isSwitch {
			return fmt.Errorf("unknown failpoint %q", name)
		}
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
	mu.Lock()
	plan = p
	if pause && usr1 == nil {
		release = make(chan struct{})
		usr1 = make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		go resumer(usr1)
	}
	mu.Unlock()
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

// On reports whether the named switch is on for this call. Only the it/
// worker asks; every switch is off unless armed through Env.
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
