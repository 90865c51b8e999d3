package rm

import (
	"context"
	"errors"

	"github.com/xact-io/xact/protocol/xactpb"
)

// Action is one phase-two request pushed by the TC for a branch this RM
// serves. The same action may arrive more than once (after a retry, a
// reconnect or a TC restart); handlers must be idempotent (I7).
type Action struct {
	XID      string
	BranchID int64
	Resource string
	Type     xactpb.BranchType
	AppData  []byte
	// LockKeys are the row keys the branch holds; AT replay must stay within
	// them.
	LockKeys []string
}

// Handler runs phase two for the branches of one mode (AT, TCC, Saga). The
// result contract: nil means DONE; an error wrapped with Permanent means
// FAILED (the TC parks the branch with the error's text as the reason); any
// other error means UNKNOWN and the TC retries with backoff.
type Handler interface {
	Commit(ctx context.Context, a Action) error
	Rollback(ctx context.Context, a Action) error
}

// ErrPermanent marks a phase-two failure that retrying cannot fix.
var ErrPermanent = errors.New("rm: permanent failure")

type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() []error { return []error{e.err, ErrPermanent} }

// Permanent wraps err so that the TC records the branch as FAILED and parks
// it for an operator instead of retrying. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }
