package tm

import "errors"

// Errors returned by the transaction manager. Commit and Rollback wrap the
// protocol error the TC answered with as well, so errors.Is works for both
// (for example tm.ErrRolledBack and protocol.ErrTimedOut).
var (
	// ErrRolledBack: commit was asked but the global transaction's decision
	// is rollback (it timed out, a branch failed phase one, or it was rolled
	// back by an operator). Nothing of it was kept.
	ErrRolledBack = errors.New("tm: global transaction rolled back")
	// ErrCommitted: rollback was asked but the global transaction's decision
	// is commit (an operator forced it). Its effects are kept.
	ErrCommitted = errors.New("tm: global transaction committed")
	// ErrUnknownOutcome: the manager could not learn the decision of the
	// global transaction (the TC was unreachable for the whole retry budget,
	// or it no longer knows the XID). The transaction may have committed or
	// rolled back; ask later with Status, or look at it with `xact tx show`.
	ErrUnknownOutcome = errors.New("tm: outcome of global transaction unknown")
	// ErrNoTransaction: propagation Mandatory and the context carries no XID.
	ErrNoTransaction = errors.New("tm: no global transaction in context")
	// ErrTransactionExists: propagation Never and the context carries an XID.
	ErrTransactionExists = errors.New("tm: global transaction present in context")
	// ErrInvalidXID: an XID is empty, too long or not printable ASCII.
	ErrInvalidXID = errors.New("tm: invalid XID")
	// ErrInvalidOption: the Manager was built with an invalid option; every
	// call returns this error (wrapped with the reason).
	ErrInvalidOption = errors.New("tm: invalid option")
)
