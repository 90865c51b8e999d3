package tcc

import "errors"

// Errors of TCC resources and the fence. Phase-two errors that retrying
// cannot fix are also wrapped with rm.Permanent, so that the TC parks the
// branch with the error's text as the reason.
var (
	// ErrTryAfterCancel: a Try reached the fence after the branch's Cancel
	// (anti-hanging). The branch was rolled back while the Try was on its
	// way; running it now would leave a reservation nobody cancels. The
	// business Try was not run.
	ErrTryAfterCancel = errors.New("tcc: try refused: the branch was already cancelled (anti-hanging)")
	// ErrAlreadyTried: a Try reached the fence for a branch whose Try
	// already committed. The business Try was not run again.
	ErrAlreadyTried = errors.New("tcc: try refused: the branch was already tried")
	// ErrNotTried: a Confirm found no fence record of the branch's Try: the
	// global transaction was committed although the Try never committed.
	// Permanent: an operator must look.
	ErrNotTried = errors.New("tcc: no record of a committed try")
	// ErrFenceConflict: a phase-two action contradicts the fence record (a
	// Confirm of a cancelled branch or of a failed Try, a Cancel of a
	// confirmed branch). Permanent.
	ErrFenceConflict = errors.New("tcc: phase two contradicts the fence record")
	// ErrActionContext: the branch's application data cannot be decoded
	// into the resource's request type. Permanent.
	ErrActionContext = errors.New("tcc: undecodable action context")
	// ErrInvalidArgument: Register, NewFence or a fence call was given an
	// argument it cannot use.
	ErrInvalidArgument = errors.New("tcc: invalid argument")
	// ErrClosed: the Fence was closed.
	ErrClosed = errors.New("tcc: fence closed")
)
