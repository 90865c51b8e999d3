package fence

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/xact-io/xact/internal/global"
)

// Branch identifies one TCC branch or saga step: the global transaction,
// the branch id the TC gave it, and the resource it belongs to. (XID,
// BranchID) is unique, and is the fence's key.
type Branch struct {
	XID      string
	BranchID int64
	// Resource is the TCC resource name (for a saga step, "saga/step");
	// the fence records it as the row's action name.
	Resource string
}

// MaxResourceLen is the longest resource name: the TC accepts 256 bytes,
// and the fence's action_name column holds as many.
const MaxResourceLen = 256

func (b Branch) validate() error {
	if err := global.ValidateXID(b.XID); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	if b.BranchID <= 0 {
		return fmt.Errorf("%w: branch id %d", ErrInvalidArgument, b.BranchID)
	}
	if name := b.Resource; name == "" || len(name) > MaxResourceLen || !utf8.ValidString(name) {
		return fmt.Errorf("%w: resource name %q must be 1-%d bytes of UTF-8", ErrInvalidArgument, name, MaxResourceLen)
	}
	return nil
}

// String formats b as "xid/branch (resource)" for errors and logs.
func (b Branch) String() string { return fmt.Sprintf("%s/%d (%s)", b.XID, b.BranchID, b.Resource) }

type branchKey struct{}

// WithBranch returns ctx carrying b (see BranchFrom). TCC resources and
// saga steps do this for the functions they call; a participant that runs
// Try/Confirm/Cancel by hand through a Fence may do it too.
func WithBranch(ctx context.Context, b Branch) context.Context {
	return context.WithValue(ctx, branchKey{}, b)
}

// BranchFrom returns the branch whose Try, Confirm or Cancel (or saga
// step's action or compensation) ctx belongs to. A participant that calls
// another service can send it along, so that the remote side fences its
// own work with the same key.
func BranchFrom(ctx context.Context) (Branch, bool) {
	b, ok := ctx.Value(branchKey{}).(Branch)
	return b, ok
}

// TryOutcome is what a Cancel knows about the Try it undoes.
type TryOutcome int

const (
	// TryUnknown: nothing is recorded about the Try. Without a fence this
	// is the normal case: the Try may not have run, may have run partly,
	// or may have run fully; Cancel must undo whatever is there and
	// tolerate that nothing is.
	TryUnknown TryOutcome = iota
	// TryDone: the fence recorded the Try as committed (its local
	// transaction, with the business change, committed).
	TryDone
	// TryFailed: the Try returned an error. With a fence its local
	// transaction was rolled back, so only effects outside it (calls to
	// other services, files, ...) may need undoing; a Cancel that only
	// touches the database has nothing to do.
	TryFailed
)

// String returns "unknown", "done" or "failed".
func (o TryOutcome) String() string {
	switch o {
	case TryUnknown:
		return "unknown"
	case TryDone:
		return "done"
	case TryFailed:
		return "failed"
	}
	return fmt.Sprintf("TryOutcome(%d)", int(o))
}
