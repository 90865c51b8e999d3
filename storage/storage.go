// Package storage defines what the transaction coordinator persists and the
// Store interface it persists through. Implementations: storage/badger (the
// embedded, durable default) and storage/memory (tests). Every
// implementation passes the contract suite in storage/storetest.
//
// A Store call that returns nil has made its change durable (for stores that
// are durable at all). Concurrent calls are expected: a durable store should
// share one sync among concurrent writers (group commit).
package storage

import (
	"context"
	"errors"
	"time"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
)

// Errors returned by stores. They are the protocol's sentinels so that the
// TC can hand them to clients unchanged.
var (
	ErrNotFound       = protocol.ErrNotFound
	ErrBranchNotFound = protocol.ErrBranchNotFound
	ErrNotBegin       = protocol.ErrNotBegin
	ErrTimedOut       = protocol.ErrTimedOut
	// ErrExists: CreateGlobal of an XID that is already stored.
	ErrExists = errors.New("storage: global transaction already exists")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("storage: closed")
	// ErrLocked: the data directory is in use by another process.
	ErrLocked = errors.New("storage: data directory is locked by another process")
	// ErrCorrupt: stored data is damaged: a record fails its checksum or
	// does not decode, records are missing, or a file of the store fails
	// its own verification. A store returns it instead of guessing, and
	// never as an empty result: a caller must not read a damaged global as
	// absent. Errors wrapping it name what is damaged (XID, key, file).
	// Not retryable. The TC parks a global whose records are damaged
	// (docs/operations.md says how to repair a data directory).
	ErrCorrupt = protocol.ErrCorrupt
)

// Status is a global transaction's status (Seata's numbering).
type Status = xactpb.GlobalStatus

// BranchStatus is a branch's status (Seata's numbering).
type BranchStatus = xactpb.BranchStatus

// BranchType is a branch's mode.
type BranchType = xactpb.BranchType

// Global is one global transaction as stored.
type Global struct {
	XID      string
	Name     string
	Status   Status
	Timeout  time.Duration
	BeganAt  time.Time
	Deadline time.Time // Begin past Deadline is rolled back by the TC
	// NextAt is when the TC must next act on this global (its deadline while
	// in Begin, its next retry while retrying); zero means never. DueGlobals
	// scans by it.
	NextAt    time.Time
	Attempts  int
	BranchSeq int64 // last branch id handed out; branch ids are 1, 2, ...
	Parked    bool
	Reason    string // why it is parked, or the last failure
	UpdatedAt time.Time
	History   []Event // bounded retry history, newest last
	// Finished is set on a tombstone: the global reached Status (a final
	// status) and its branches and locks are gone.
	Finished bool
	// LocksReleased: the global holds no locks any more, whatever its
	// branches list (set with the commit decision, I5, or by ReleaseLocks
	// without branch ids). No branch registers after it is set.
	LocksReleased bool
}

// Event is one entry of a global's retry history.
type Event struct {
	At   time.Time
	What string
}

// Branch is one branch of a global transaction.
type Branch struct {
	XID          string
	ID           int64
	Resource     string
	Type         BranchType
	Status       BranchStatus
	LockKeys     []string // row keys within Resource
	AppData      []byte
	RegisteredAt time.Time
	Reason       string
	Attempts     int
	// LocksReleased: the branch holds no locks any more (set when its
	// rollback is durable, I5, or by ReleaseLocks).
	LocksReleased bool
}

// Lock is one held row lock.
//
// Locks are not records of their own: a global holds the row (Resource,
// Key) while one of its branches lists Key in its LockKeys for Resource,
// that branch is not LocksReleased, and the global is not LocksReleased.
// The lock is attributed to the lowest such branch, so releasing a later
// branch never frees a row an earlier one still needs, and releasing an
// earlier one passes the row on to the next branch that lists it.
type Lock struct {
	Resource string
	Key      string
	XID      string
	BranchID int64
}

// Filter selects globals for ListGlobals.
type Filter struct {
	Statuses   []Status // empty: any
	ParkedOnly bool
	Limit      int // <= 0: no limit
}

// Store is what the TC persists through. All methods are safe for
// concurrent use. Methods that change state return only after the change is
// durable.
type Store interface {
	// CreateGlobal stores a new global; ErrExists if the XID is stored.
	CreateGlobal(ctx context.Context, g *Global) error
	// GetGlobal returns the global, or its tombstone (Finished set) while
	// the tombstone is retained, or ErrNotFound.
	GetGlobal(ctx context.Context, xid string) (*Global, error)
	// UpdateGlobal reads the global, calls fn on a copy, and stores the
	// result atomically. fn may be called more than once; an error from fn
	// aborts the update and is returned. ErrNotFound if absent (a tombstone
	// counts as absent here). Changes fn makes to XID, BranchSeq and
	// Finished are ignored. fn may set LocksReleased: the global's locks
	// are then free once UpdateGlobal returns, and released in the same
	// write as the rest of the update. Clearing LocksReleased is ignored (a
	// released row may belong to another global by then).
	UpdateGlobal(ctx context.Context, xid string, fn func(g *Global) error) (*Global, error)
	// FinishGlobal removes the global, its branches and its locks, and
	// leaves a tombstone with the final status for the retention period.
	FinishGlobal(ctx context.Context, xid string, final Status) error
	// ListGlobals returns stored (unfinished) globals matching f.
	ListGlobals(ctx context.Context, f Filter) ([]*Global, error)
	// DueGlobals returns unfinished globals whose NextAt is non-zero and not
	// after t, earliest first, at most limit.
	DueGlobals(ctx context.Context, t time.Time, limit int) ([]*Global, error)

	// RegisterBranch atomically: checks that the global exists
	// (ErrNotFound), is in Begin and its locks are not released
	// (ErrNotBegin) and that now is before its deadline (ErrTimedOut);
	// takes every lock key of b for b.XID, all or nothing (a
	// *protocol.LockConflictError naming the first held key otherwise; keys
	// the same global holds are not conflicts); assigns b.ID = ++BranchSeq;
	// and stores the branch. On error nothing changes and no key stays
	// taken. Of concurrent registrations of different globals that want
	// the same key, at most one succeeds.
	RegisterBranch(ctx context.Context, b *Branch, now time.Time) (int64, error)
	// BeginRegisterBranch is RegisterBranch for a global that may not be
	// stored yet (one begun lazily): if g.XID is neither stored nor
	// tombstoned, g is created in the same atomic write as the branch
	// (and created reports it); otherwise it is RegisterBranch. If the
	// registration is refused, g is not created either. b.XID must be
	// g.XID (ErrInvalidArgument otherwise).
	BeginRegisterBranch(ctx context.Context, g *Global, b *Branch, now time.Time) (id int64, created bool, err error)
	// UpdateBranch reads a branch, calls fn on a copy and stores it
	// atomically. ErrBranchNotFound if absent. Changes fn makes to XID and
	// ID are ignored. fn may set LocksReleased, with the effect of
	// ReleaseLocks for this branch in the same write; clearing it is
	// ignored.
	UpdateBranch(ctx context.Context, xid string, id int64, fn func(b *Branch) error) (*Branch, error)
	// Branches returns the global's branches in registration order.
	Branches(ctx context.Context, xid string) ([]*Branch, error)

	// ReleaseLocks releases the locks of the given branches of xid (sets
	// their LocksReleased), or all of xid's locks when no branch id is
	// given (sets the global's LocksReleased). Released locks stay released
	// across restarts. Unknown globals and branches are ignored.
	ReleaseLocks(ctx context.Context, xid string, branchIDs ...int64) error
	// CheckLocks returns nil if no key of resource is held by a global other
	// than xid, or a *protocol.LockConflictError for the first one that is.
	CheckLocks(ctx context.Context, xid, resource string, keys []string) error
	// Locks lists held locks, of one global if xid is not empty, at most
	// limit (<= 0: no limit).
	Locks(ctx context.Context, xid string, limit int) ([]Lock, error)

	Close() error
}

// Final reports whether s is a final status (nothing left to do):
// protocol.Final.
func Final(s Status) bool { return protocol.Final(s) }

// Clone returns a deep copy of g.
func (g *Global) Clone() *Global {
	c := *g
	c.History = append([]Event(nil), g.History...)
	return &c
}

// Clone returns a deep copy of b.
func (b *Branch) Clone() *Branch {
	c := *b
	c.LockKeys = append([]string(nil), b.LockKeys...)
	c.AppData = append([]byte(nil), b.AppData...)
	return &c
}
