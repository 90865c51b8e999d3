//go:build failpoints

package it

import (
	"fmt"
	"os"

	"github.com/xact-io/xact/internal/failpoint"
)

// The suite's own failpoint names: the library lists only the points it
// places (failpoint.Points); these exist in the worker (worker_test.go)
// and are registered here, in the test binary.

// itPoints are the worker's crash points (failpoint.Hit).
var itPoints = map[string]string{
	"it/worker/between-branches": "it/ bank worker: the first branch of a transfer committed locally, the second not begun",
}

// switches are the worker's test-only switches (failpoint.On), with the
// invariant each breaks. They exist so that the suite can show each of its
// invariant checks failing (TestChecksCatchBrokenInvariants); only tests
// dedicated to that arm them.
var switches = map[string]string{
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

func init() {
	for name, doc := range itPoints {
		failpoint.Register(failpoint.Point, name, doc)
	}
	for name, doc := range switches {
		failpoint.Register(failpoint.Switch, name, doc)
	}
}

// fpEnv carries a worker's failpoints and switches (the failpoint.Env
// syntax). The failpoint package reads failpoint.Env before init registers
// the suite's names, so the worker arms this itself (armWorker); its
// failpoint.Env is empty.
const fpEnv = "XACT_IT_FAILPOINTS"

// armWorker arms what fpEnv names, refusing unknown names as
// failpoint.Env does.
func armWorker() error {
	if err := failpoint.Arm(os.Getenv(fpEnv)); err != nil {
		return fmt.Errorf("%s: %w", fpEnv, err)
	}
	return nil
}
