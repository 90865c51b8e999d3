package rm

import "errors"

// Errors returned by the Client. Errors of phase-one calls wrap the
// protocol's sentinels as well (protocol.ErrNotBegin, a
// *protocol.LockConflictError, ...).
var (
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("rm: client closed")
	// ErrNotStarted: a branch was registered before Start. Without the
	// attach stream that Start opens, the TC could never deliver the
	// branch's phase two to this process: a commit would be answered and
	// a rollback never applied.
	ErrNotStarted = errors.New("rm: client not started: call (*rm.Client).Start before registering branches, so that the TC can deliver their phase two")
	// ErrStarted: Start was called twice.
	ErrStarted = errors.New("rm: client already started")
	// ErrInvalidOption: the Client was built with an invalid option; every
	// call returns this error (wrapped with the reason).
	ErrInvalidOption = errors.New("rm: invalid option")
	// ErrInvalidArgument: a call was given an argument it cannot use (an
	// empty resource id, a nil handler, an unknown branch type).
	ErrInvalidArgument = errors.New("rm: invalid argument")
)
