package fence

import "errors"

// Errors of the fence. Phase-two errors that retrying cannot fix are also
// wrapped with rm.Permanent, so that the TC parks the branch with the
// error's text as the reason.
var (
	// ErrTryAfterCancel: a Try reached the fence after the branch's Cancel
	// (anti-hanging). The branch was rolled back while the Try was on its
	// way; running it now would leave a reservation nobody cancels. The
	// business Try was not run.
	ErrTryAfterCancel = errors.New("fence: try refused: the branch was already cancelled (anti-hanging)")
	// ErrAlreadyTried: a Try reached the fence for a branch whose Try
	// already committed. The business Try was not run again.
	ErrAlreadyTried = errors.New("fence: try refused: the branch was already tried")
	// ErrNotTried: a Confirm found no fence record of the branch's Try: the
	// global transaction was committed although the Try never committed.
	// Permanent: an operator must look.
	ErrNotTried = errors.New("fence: no record of a committed try")
	// ErrConflict: a phase-two action contradicts the fence record (a
	// Confirm of a cancelled branch or of a failed Try, a Cancel of a
	// confirmed branch). Permanent.
	ErrConflict = errors.New("fence: phase two contradicts the fence record")
	// ErrInvalidArgument: New or a fence call was given an argument it
	// cannot use.
	ErrInvalidArgument = errors.New("fence: invalid argument")
	// ErrClosed: the Fence was closed.
	ErrClosed = errors.New("fence: closed")
)
