// Package storage defines what the transaction coordinator persists and the
// Store interface it persists through. Implementations: storage/embedded (the
// embedded, durable default) and storage/memory (tests). Every
// implementation passes the contract suite in storage/storetest.
//
// A Store is persistence only: records in, records out. The coordinator's
// rules on those records (who may register, which rows are locked, when
// locks are released) are in tc/ledger. A write call that returns nil has
// made its change durable unless it was asked for Relaxed durability (and
// for stores that are durable at all). Concurrent calls are expected: a
// durable store should share one sync among concurrent writers (group
// commit).
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
	// ErrNotDurable: a write was made (reads see it) but making it durable
	// failed, so whether it survives a crash is unknown. A caller must
	// treat the change as possibly made: AddBranch reports the id it gave
	// the branch with it, and the branch's rows stay locked.
	ErrNotDurable = errors.New("storage: the write is visible but could not be made durable")
	// ErrNotOwner: a store that several coordinators share refused a
	// write to a decided global that another coordinator drives (or that
	// this one drove under an older epoch): the caller must stop driving
	// it. See storage/shareddb.
	ErrNotOwner = errors.New("storage: another coordinator drives this global")
	// ErrLeaseLost: a shared store found that this coordinator's lease
	// belongs to a newer epoch of its node id (another coordinator joined
	// under it): it must drive nothing any more.
	ErrLeaseLost = errors.New("storage: this coordinator's lease is lost")
	// ErrNodeLive: a shared store refused to let a coordinator join under
	// a node id whose lease another coordinator holds.
	ErrNodeLive = errors.New("storage: a live coordinator holds this node id")
)

// Node is a coordinator of a store several coordinators share, as the
// store records it (see storage/shareddb).
type Node struct {
	ID         string
	Epoch      int64
	LeaseUntil time.Time // the database's clock
	Addr       string    // the address it advertises to clients
	Live       bool      // the lease has not run out
}

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
	// branches list (set with the commit decision, I5). No branch
	// registers after it is set.
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
	// rollback is durable, I5).
	LocksReleased bool
}

// Lock is one held row lock, as the coordinator's lock manager reports it
// (tc/ledger). Stores do not keep locks: a global holds the row (Resource,
// Key) while one of its branches lists Key in its LockKeys for Resource,
// that branch is not LocksReleased, and the global is not LocksReleased.
// The lock is attributed to the lowest such branch.
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

// Durability says when a write may return.
type Durability uint8

const (
	// Durable: the write returns once it is durable.
	Durable Durability = iota
	// Relaxed: the write may return before it is durable. It is still
	// atomic, visible to every later read, and ordered: it becomes durable
	// no later than the next Durable write (a durable store syncs its log
	// in commit order). A crash may lose it.
	//
	// The TC relaxes only writes whose loss is harmless: a Begin (a global
	// with no branch that vanishes is indistinguishable from one never
	// begun; the first registration makes it durable), and the
	// bookkeeping after a durable decision (finishing, per-branch
	// progress, lock release), which recovery redoes, idempotently, from
	// the durable decision.
	Relaxed
)

// Admit decides whether a branch may be added to g: AddBranch calls it,
// inside its atomic write, with the global as stored (or its tombstone,
// Finished set, or the global AddBranch is to create), and adds nothing if
// it returns an error. The coordinator's registration rule (I4) is one.
type Admit func(g *Global) error

// Store persists the coordinator's records: globals, their branches, and
// the tombstones of finished globals. It holds no coordinator rules (which
// global may register, which rows are locked: tc/ledger) beyond keeping
// each record whole and each write atomic.
//
// All methods are safe for concurrent use. A write returns when its
// Durability allows; reads see every write that has returned.
type Store interface {
	// CreateGlobal stores a new global; ErrExists if the XID is stored
	// or has a retained tombstone.
	CreateGlobal(ctx context.Context, g *Global, d Durability) error
	// GetGlobal returns the global, or its tombstone (Finished set) while
	// the tombstone is retained, or ErrNotFound.
	GetGlobal(ctx context.Context, xid string) (*Global, error)
	// UpdateGlobal reads the global, calls fn on a copy, and stores the
	// result atomically. fn may be called more than once; an error from fn
	// aborts the update and is returned. ErrNotFound if absent (a tombstone
	// counts as absent here). Changes fn makes to XID, BranchSeq and
	// Finished are ignored.
	UpdateGlobal(ctx context.Context, xid string, fn func(g *Global) error, d Durability) (*Global, error)
	// FinishGlobal removes the global and its branches and leaves a
	// tombstone with the final status for the retention period. Finishing
	// a tombstone does nothing; ErrNotFound if neither is stored.
	FinishGlobal(ctx context.Context, xid string, final Status, d Durability) error
	// ListGlobals returns stored (unfinished) globals matching f, ordered
	// by XID.
	ListGlobals(ctx context.Context, f Filter) ([]*Global, error)
	// DueGlobals returns unfinished globals whose NextAt is non-zero and not
	// after t, earliest first, at most limit.
	DueGlobals(ctx context.Context, t time.Time, limit int) ([]*Global, error)

	// AddBranch atomically: reads b.XID's global (if neither it nor its
	// tombstone is stored, create is the global, to be stored with the
	// branch; with create nil that is ErrNotFound); calls admit on it;
	// assigns b.ID = ++BranchSeq; and stores the branch and the global.
	// created reports that create was stored. If admit refuses, nothing
	// changes and its error is returned. admit may be called more than
	// once. create.XID must be b.XID (ErrInvalidArgument otherwise). An
	// error matching ErrNotDurable comes with the id (and created) of the
	// branch that may be stored; any other error with id 0: nothing was
	// stored.
	AddBranch(ctx context.Context, b *Branch, create *Global, admit Admit, d Durability) (id int64, created bool, err error)
	// UpdateBranch reads a branch, calls fn on a copy and stores it
	// atomically. ErrBranchNotFound if absent. Changes fn makes to XID and
	// ID are ignored.
	UpdateBranch(ctx context.Context, xid string, id int64, fn func(b *Branch) error, d Durability) (*Branch, error)
	// Branches returns the global's branches in registration order (none
	// for an unknown global).
	Branches(ctx context.Context, xid string) ([]*Branch, error)

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
