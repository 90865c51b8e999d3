package tcc

import (
	"database/sql"
	"log/slog"
	"time"

	"github.com/xact-io/xact/rm/fence"
)

// The fence moved to package rm/fence, which saga steps share. The names
// below are the ones it had here, kept so that existing code builds.

// FenceDDL creates the fence table.
//
// Deprecated: use fence.DDL.
const FenceDDL = fence.DDL

// Fence is a fence on a participant's database.
//
// Deprecated: use fence.Fence.
type Fence = fence.Fence

// FenceOption configures a Fence.
//
// Deprecated: use fence.Option.
type FenceOption = fence.Option

// FenceStatus is the state of one branch in the fence table.
//
// Deprecated: use fence.Status.
type FenceStatus = fence.Status

// The fence statuses.
//
// Deprecated: use fence.StatusNone and the others.
const (
	FenceNone      = fence.StatusNone
	FenceTried     = fence.StatusTried
	FenceConfirmed = fence.StatusConfirmed
	FenceCancelled = fence.StatusCancelled
	FenceSuspended = fence.StatusSuspended
	FenceTryFailed = fence.StatusTryFailed
)

// Defaults of the fence's options.
//
// Deprecated: use fence.DefaultRetention, fence.DefaultCleanupInterval
// and fence.DefaultCleanupBatch.
const (
	DefaultFenceRetention       = fence.DefaultRetention
	DefaultFenceCleanupInterval = fence.DefaultCleanupInterval
	DefaultFenceCleanupBatch    = fence.DefaultCleanupBatch
)

// Errors of the fence.
//
// Deprecated: use fence.ErrNotTried, fence.ErrConflict and
// fence.ErrClosed.
var (
	ErrNotTried      = fence.ErrNotTried
	ErrFenceConflict = fence.ErrConflict
	ErrClosed        = fence.ErrClosed
)

// NewFence returns a Fence on db.
//
// Deprecated: use fence.New.
func NewFence(db *sql.DB, opts ...FenceOption) (*Fence, error) { return fence.New(db, opts...) }

// WithCleanup sets the fence's cleanup interval and retention.
//
// Deprecated: use fence.WithCleanup.
func WithCleanup(every, olderThan time.Duration) FenceOption {
	return fence.WithCleanup(every, olderThan)
}

// WithCleanupBatch sets the most rows one DELETE of Cleanup removes.
//
// Deprecated: use fence.WithCleanupBatch.
func WithCleanupBatch(n int) FenceOption { return fence.WithCleanupBatch(n) }

// WithTxOptions sets the options of the fence's local transactions.
//
// Deprecated: use fence.WithTxOptions.
func WithTxOptions(o *sql.TxOptions) FenceOption { return fence.WithTxOptions(o) }

// WithFenceLogger sets the fence's logger.
//
// Deprecated: use fence.WithLogger.
func WithFenceLogger(l *slog.Logger) FenceOption { return fence.WithLogger(l) }
