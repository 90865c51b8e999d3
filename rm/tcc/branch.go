package tcc

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/xact-io/xact/rm/fence"
)

// Branch identifies one TCC branch: the global transaction, the branch id
// the TC gave it, and the resource it belongs to. It is the fence's key,
// fence.Branch.
type Branch = fence.Branch

// MaxResourceLen is the longest resource name: the TC accepts 256 bytes,
// and the fence's action_name column holds as many.
const MaxResourceLen = fence.MaxResourceLen

func validResource(name string) error {
	if name == "" || len(name) > MaxResourceLen || !utf8.ValidString(name) {
		return fmt.Errorf("%w: resource name %q must be 1-%d bytes of UTF-8", ErrInvalidArgument, name, MaxResourceLen)
	}
	return nil
}

// WithBranch returns ctx carrying b (fence.WithBranch; see BranchFrom).
// Resources do this for the functions they call; a participant that runs
// Try/Confirm/Cancel by hand through a fence.Fence may do it too.
func WithBranch(ctx context.Context, b Branch) context.Context {
	return fence.WithBranch(ctx, b)
}

// BranchFrom returns the branch whose Try, Confirm or Cancel ctx belongs
// to (fence.BranchFrom). A participant that calls another service can
// send it along, so that the remote side fences its own work with the
// same key.
func BranchFrom(ctx context.Context) (Branch, bool) {
	return fence.BranchFrom(ctx)
}

// TryOutcome is what a Cancel knows about the Try it undoes
// (fence.TryOutcome, which the fence tells a fenced Cancel).
type TryOutcome = fence.TryOutcome

// The outcomes of a Try, as fence defines them.
const (
	// TryUnknown: nothing is recorded about the Try. Without a fence this
	// is the normal case: the Try may not have run, may have run partly,
	// or may have run fully; Cancel must undo whatever is there and
	// tolerate that nothing is.
	TryUnknown = fence.TryUnknown
	// TryDone: the fence recorded the Try as committed.
	TryDone = fence.TryDone
	// TryFailed: the Try returned an error (see fence.TryFailed).
	TryFailed = fence.TryFailed
)
