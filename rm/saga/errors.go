package saga

import (
	"errors"
	"fmt"
)

// Errors of sagas.
var (
	// ErrInvalidArgument: Define, Step or FencedStep was given something
	// it cannot use.
	ErrInvalidArgument = errors.New("saga: invalid argument")
	// ErrNoManager: Run was called on a saga defined without a tm.Manager
	// (a process that only serves compensations).
	ErrNoManager = errors.New("saga: no transaction manager")
	// ErrRecord: a step's record at the TC cannot be decoded, or belongs to
	// another saga or step. Permanent.
	ErrRecord = errors.New("saga: undecodable step record")
)

// StepError is the error of a saga whose step failed: the action's error
// after its retries, or the failure to register or record the step. The
// saga's global transaction is rolled back and the steps before it are
// compensated.
type StepError struct {
	Saga, Step string
	XID        string
	// BranchID is 0 when the step failed to register.
	BranchID int64
	// Attempts is how many times the action ran.
	Attempts int
	Err      error
}

// Error describes the failed step and its cause.
func (e *StepError) Error() string {
	return fmt.Sprintf("saga %s: step %s (xid %s, branch %d, %d attempts): %v", e.Saga, e.Step, e.XID, e.BranchID, e.Attempts, e.Err)
}

// Unwrap returns the cause, so errors.Is finds the action's error.
func (e *StepError) Unwrap() error { return e.Err }
