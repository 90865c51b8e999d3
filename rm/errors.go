package rm

import "errors"

// Errors returned by the Client. Errors of phase-one calls wrap the
// protocol's sentinels as well (protocol.ErrNotBegin, a
// *protocol.LockConflictError, ...).
var (
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("rm: client closed")
	// ErrStarted: Start was called twice.
	ErrStarted = errors.New("rm: client already started")
	// ErrInvalidOption: the Client was built with an invalid option; every
	// call returns this error (wrapped with the reason).
	ErrInvalidOption = errors.New("rm: invalid option")
	// ErrInvalidArgument: a call was given an argument it cannot use (an
	// empty resource id, a nil handler, an unknown branch type).
	ErrInvalidArgument = errors.New("rm: invalid argument")
)
