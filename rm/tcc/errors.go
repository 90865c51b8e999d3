package tcc

import (
	"errors"

	"github.com/xact-io/xact/rm/fence"
)

// Errors of TCC resources. Phase-two errors that retrying cannot fix are
// also wrapped with rm.Permanent, so that the TC parks the branch with the
// error's text as the reason.
var (
	// ErrTryAfterCancel: a fenced Try was refused because the branch's
	// Cancel came first (anti-hanging); the business Try was not run. It
	// is fence.ErrTryAfterCancel.
	ErrTryAfterCancel = fence.ErrTryAfterCancel
	// ErrAlreadyTried: a fenced Try was refused because the branch's Try
	// already committed. It is fence.ErrAlreadyTried.
	ErrAlreadyTried = fence.ErrAlreadyTried
	// ErrActionContext: the branch's application data cannot be decoded
	// into the resource's request type. Permanent.
	ErrActionContext = errors.New("tcc: undecodable action context")
	// ErrInvalidArgument: Register or RegisterFenced was given an argument
	// it cannot use.
	ErrInvalidArgument = errors.New("tcc: invalid argument")
)
