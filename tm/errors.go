package tm

import (
	"errors"
	"fmt"

	"github.com/xact-io/xact/internal/global"
)

// Errors returned by the transaction manager. Commit and Rollback wrap the
// protocol error the TC answered with as well, so errors.Is works for both
// (for example tm.ErrRolledBack and protocol.ErrTimedOut).
var (
	// ErrRolledBack: commit was asked but the global transaction's decision
	// is rollback (it timed out, a branch failed phase one, or it was rolled
	// back by an operator). Nothing of it was kept.
	ErrRolledBack = errors.New("tm: global transaction rolled back")
	// ErrCommitted: rollback was asked but the global transaction's decision
	// is commit (an operator forced it). Its effects are kept. Do returns
	// it as an *OutcomeError, which carries fn's error.
	ErrCommitted = errors.New("tm: global transaction committed")
	// ErrUnknownOutcome: the manager could not learn the decision of the
	// global transaction (the TC was unreachable for the whole retry budget,
	// or it no longer knows the XID). The transaction may have committed or
	// rolled back; ask later with Status, or look at it with `xact tx show`.
	// Do returns it as an *OutcomeError, which carries fn's error.
	ErrUnknownOutcome = errors.New("tm: outcome of global transaction unknown")
	// ErrNoTransaction: propagation Mandatory and the context carries no XID.
	// A TCC Try or saga run without a global transaction returns it too.
	ErrNoTransaction = global.ErrNoTransaction
	// ErrTransactionExists: propagation Never and the context carries an XID.
	ErrTransactionExists = errors.New("tm: global transaction present in context")
	// ErrInvalidXID: an XID is empty, too long or not printable ASCII.
	// rm and datasource return it too.
	ErrInvalidXID = global.ErrInvalidXID
	// ErrInvalidOption: the Manager was built with an invalid option; every
	// call returns this error (wrapped with the reason).
	ErrInvalidOption = errors.New("tm: invalid option")
)

// OutcomeError is Do's error when the global transaction it began did not
// end the way Do's other errors imply: Do could not learn its outcome
// (errors.Is(err, ErrUnknownOutcome): it may commit or roll back), or it
// committed although fn failed (errors.Is(err, ErrCommitted): someone else
// committed it, for example an operator, before Do's rollback arrived).
//
// fn's error, if fn failed, is not in the error chain: errors.Is(err,
// fnErr) is false, so that code which checks its business error first
// never reports a rollback that did not happen. BusinessErr returns it.
type OutcomeError struct {
	// XID is the global transaction's.
	XID string
	// Cause is the error of the decision that could not be made or was
	// refused (Commit's or Rollback's, see Manager.Commit and
	// Manager.Rollback); it is in the chain.
	Cause error

	outcome  error // ErrUnknownOutcome or ErrCommitted; in the chain
	business error // fn's error; not in the chain
}

// newOutcomeError builds Do's error for cause, a failed decision, and
// business, fn's error (nil if fn succeeded). Only a decision known to be
// commit is reported as such; anything else is an unknown outcome.
func newOutcomeError(xid string, cause, business error) *OutcomeError {
	outcome := ErrUnknownOutcome
	if errors.Is(cause, ErrCommitted) && !errors.Is(cause, ErrUnknownOutcome) {
		outcome = ErrCommitted
	}
	return &OutcomeError{XID: xid, Cause: cause, outcome: outcome, business: business}
}

// BusinessErr returns the error fn returned, or nil if fn succeeded (a
// commit whose outcome is unknown).
func (e *OutcomeError) BusinessErr() error { return e.business }

func (e *OutcomeError) Error() string {
	switch {
	case e.business == nil:
		return e.Cause.Error()
	case e.outcome == ErrCommitted:
		return fmt.Sprintf("tm: %s committed although fn failed (%v): %v", e.XID, e.business, e.Cause)
	default:
		return fmt.Sprintf("tm: %s: outcome unknown: fn failed (%v) but its rollback is not confirmed: %v", e.XID, e.business, e.Cause)
	}
}

// Unwrap returns the outcome (ErrUnknownOutcome or ErrCommitted) and
// Cause, never the business error.
func (e *OutcomeError) Unwrap() []error { return []error{e.outcome, e.Cause} }
