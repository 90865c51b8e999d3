// Package ledger is the coordinator's book of global transactions: a
// storage.Store for the records, a LockManager for the global row locks,
// and the coordinator's rules on both, each written once, here:
//
//   - Registration (I4): a branch registers only while its global is in
//     Begin, its locks are not released and its deadline has not passed;
//     it takes every lock key it lists, all or nothing, and is stored in
//     the same step.
//   - Release (I5): a row is freed only once the write that releases it
//     has returned, and a released flag is never cleared.
//
// The store decides nothing: Store.AddBranch evaluates the registration
// rule inside its atomic write (storage.Admit), so the rule holds against
// concurrent decisions whatever the store is. The lock manager is the
// in-memory lock table (Open) or one the caller gives (New), such as a
// shared database's.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
)

// LockManager holds the global row locks. All methods are safe for
// concurrent use.
type LockManager interface {
	// Hold runs add, which stores the branch b and returns its id, with
	// b's keys held for b.XID: every key of b.Resource in b.LockKeys that
	// b.XID does not hold yet is taken, all or none, before add runs (a
	// *protocol.LockConflictError names the first key another global
	// holds, and add does not run); they are b's once add returns, and
	// are given back if add fails. Keys b.XID holds already stay with the
	// branch that took them first. Of two Holds of different globals that
	// want one key, at most one succeeds. add returns id 0 when it stored
	// nothing; an error with a non-zero id (storage.ErrNotDurable) means
	// the branch may be stored, and its keys stay held.
	Hold(ctx context.Context, b *storage.Branch, add func(ctx context.Context) (int64, error)) (int64, error)
	// Releasing runs write, which stores changes to xid's records and
	// reports which locks they release (the branches ids, or all of xid's
	// locks), and frees those locks: once write has returned (the
	// in-memory table), or in the same database transaction (a shared
	// database's lock table, which hands its transaction to write through
	// ctx). A row a remaining branch of xid also lists passes to the
	// lowest such branch. If write fails, nothing is freed. Unknown
	// globals and branches are ignored.
	Releasing(ctx context.Context, xid string, write func(ctx context.Context) (ids []int64, all bool, err error)) error
	// Check returns nil if no key of resource is held by a global other
	// than xid, or a *protocol.LockConflictError for the first one that is.
	Check(ctx context.Context, xid, resource string, keys []string) error
	// Locks lists held locks, at most limit (<= 0: no limit): all of them
	// ordered by resource and key, or xid's ordered by branch id, resource
	// and key.
	Locks(ctx context.Context, xid string, limit int) ([]storage.Lock, error)
}

// Ledger is a store with its lock manager and the coordinator's rules.
// It is safe for concurrent use.
type Ledger struct {
	store storage.Store
	locks LockManager
}

// New returns the ledger of store whose locks lm holds. lm must already
// hold the locks of the stored branches.
func New(store storage.Store, lm LockManager) *Ledger {
	return &Ledger{store: store, locks: lm}
}

// Open returns the ledger of store. A store that keeps the locks itself,
// in a table every coordinator sharing its database reads
// (storage/shareddb), is its own LockManager; for any other the locks are
// in an in-memory lock table, rebuilt from the stored branches
// (LoadTable).
func Open(ctx context.Context, store storage.Store) (*Ledger, error) {
	if lm, ok := store.(LockManager); ok {
		return New(store, lm), nil
	}
	t, err := LoadTable(ctx, store)
	if err != nil {
		return nil, err
	}
	return New(store, t), nil
}

// Store is the ledger's store, for reads and for what a store offers
// beyond storage.Store (backups).
func (l *Ledger) Store() storage.Store { return l.store }

// GetGlobal is storage.Store.GetGlobal.
func (l *Ledger) GetGlobal(ctx context.Context, xid string) (*storage.Global, error) {
	return l.store.GetGlobal(ctx, xid)
}

// ListGlobals is storage.Store.ListGlobals.
func (l *Ledger) ListGlobals(ctx context.Context, f storage.Filter) ([]*storage.Global, error) {
	return l.store.ListGlobals(ctx, f)
}

// DueGlobals is storage.Store.DueGlobals.
func (l *Ledger) DueGlobals(ctx context.Context, t time.Time, limit int) ([]*storage.Global, error) {
	return l.store.DueGlobals(ctx, t, limit)
}

// Branches is storage.Store.Branches.
func (l *Ledger) Branches(ctx context.Context, xid string) ([]*storage.Branch, error) {
	return l.store.Branches(ctx, xid)
}

// CreateGlobal is storage.Store.CreateGlobal.
func (l *Ledger) CreateGlobal(ctx context.Context, g *storage.Global, d storage.Durability) error {
	return l.store.CreateGlobal(ctx, g, d)
}

// UpdateGlobal is storage.Store.UpdateGlobal, except that clearing
// LocksReleased is ignored, and setting it frees the global's locks (with
// the write: LockManager.Releasing).
func (l *Ledger) UpdateGlobal(ctx context.Context, xid string, fn func(g *storage.Global) error, d storage.Durability) (*storage.Global, error) {
	var out *storage.Global
	err := l.locks.Releasing(ctx, xid, func(ctx context.Context) ([]int64, bool, error) {
		released := false
		g, err := l.store.UpdateGlobal(ctx, xid, func(g *storage.Global) error {
			was := g.LocksReleased
			if err := fn(g); err != nil {
				return err
			}
			g.LocksReleased = g.LocksReleased || was
			released = g.LocksReleased && !was
			return nil
		}, d)
		out = g
		return nil, released, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateBranch is storage.Store.UpdateBranch, except that clearing
// LocksReleased is ignored, and setting it frees the branch's locks (with
// the write: LockManager.Releasing).
func (l *Ledger) UpdateBranch(ctx context.Context, xid string, id int64, fn func(b *storage.Branch) error, d storage.Durability) (*storage.Branch, error) {
	var out *storage.Branch
	err := l.locks.Releasing(ctx, xid, func(ctx context.Context) ([]int64, bool, error) {
		released := false
		b, err := l.store.UpdateBranch(ctx, xid, id, func(b *storage.Branch) error {
			was := b.LocksReleased
			if err := fn(b); err != nil {
				return err
			}
			b.LocksReleased = b.LocksReleased || was
			released = b.LocksReleased && !was
			return nil
		}, d)
		out = b
		if released {
			return []int64{id}, false, err
		}
		return nil, false, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FinishGlobal is storage.Store.FinishGlobal, and frees the global's
// locks with it.
func (l *Ledger) FinishGlobal(ctx context.Context, xid string, final storage.Status, d storage.Durability) error {
	return l.locks.Releasing(ctx, xid, func(ctx context.Context) ([]int64, bool, error) {
		return nil, true, l.store.FinishGlobal(ctx, xid, final, d)
	})
}

// ReleaseLocks releases, durably, the locks of the given branches of xid,
// or all of xid's locks when no branch id is given (the global's
// LocksReleased). Unknown globals and branches are ignored.
func (l *Ledger) ReleaseLocks(ctx context.Context, xid string, ids ...int64) error {
	release := func(err error) error {
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrBranchNotFound) {
			return nil // a finished or unknown global holds nothing
		}
		return err
	}
	if len(ids) == 0 {
		_, err := l.UpdateGlobal(ctx, xid, func(g *storage.Global) error {
			g.LocksReleased = true
			return nil
		}, storage.Durable)
		return release(err)
	}
	for _, id := range ids {
		_, err := l.UpdateBranch(ctx, xid, id, func(b *storage.Branch) error {
			b.LocksReleased = true
			return nil
		}, storage.Durable)
		if err := release(err); err != nil {
			return err
		}
	}
	return nil
}

// CheckLocks returns nil if no key of resource is held by a global other
// than xid, or a *protocol.LockConflictError for the first one that is.
func (l *Ledger) CheckLocks(ctx context.Context, xid, resource string, keys []string) error {
	return l.locks.Check(ctx, xid, resource, keys)
}

// Locks lists held locks (LockManager.Locks).
func (l *Ledger) Locks(ctx context.Context, xid string, limit int) ([]storage.Lock, error) {
	return l.locks.Locks(ctx, xid, limit)
}

// RegisterBranch registers b with its global (I4): the global must be
// stored (ErrNotFound), in Begin with its locks not released
// (ErrNotBegin; a finished global too) and before its deadline at now
// (ErrTimedOut); every lock key of b is taken for b.XID, all or nothing
// (a *protocol.LockConflictError naming the first held key; keys the same
// global holds are not conflicts); and b is stored with b.ID =
// ++BranchSeq, durably. On error nothing changes and no key stays taken.
// A registration that its global's state refuses reports that, not a
// lock conflict.
func (l *Ledger) RegisterBranch(ctx context.Context, b *storage.Branch, now time.Time) (int64, error) {
	id, _, err := l.register(ctx, nil, b, now)
	return id, err
}

// BeginRegisterBranch is RegisterBranch for a global that may not be
// stored yet (one begun lazily): if g.XID is neither stored nor
// tombstoned, g is created in the same write as the branch (created
// reports it). A refused registration creates nothing. b.XID must be
// g.XID (ErrInvalidArgument otherwise).
func (l *Ledger) BeginRegisterBranch(ctx context.Context, g *storage.Global, b *storage.Branch, now time.Time) (id int64, created bool, err error) {
	if g.XID == "" || g.XID != b.XID {
		return 0, false, fmt.Errorf("ledger: begin %q and register a branch of %q: %w", g.XID, b.XID, protocol.ErrInvalidArgument)
	}
	return l.register(ctx, g, b, now)
}

func (l *Ledger) register(ctx context.Context, begin *storage.Global, b *storage.Branch, now time.Time) (int64, bool, error) {
	c := b.Clone()
	c.LocksReleased = false
	admit := registrable(now)
	created := false
	id, err := l.locks.Hold(ctx, c, func(ctx context.Context) (int64, error) {
		id, cr, err := l.store.AddBranch(ctx, c, begin, admit, storage.Durable)
		created = cr
		return id, err
	})
	if err != nil {
		// A branch that may be stored (storage.ErrNotDurable) keeps its
		// rows; its registration still failed, so the RM commits nothing.
		var lc *protocol.LockConflictError
		if errors.As(err, &lc) {
			return 0, false, l.refusal(ctx, c.XID, begin, admit, err)
		}
		return 0, false, err
	}
	b.ID = id
	return id, created, nil
}

// registrable is the registration rule (I4) at now.
func registrable(now time.Time) storage.Admit {
	return func(g *storage.Global) error {
		switch {
		case g.Finished:
			return fmt.Errorf("ledger: register a branch of %s (finished): %w", g.XID, protocol.ErrNotBegin)
		case g.Status != xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN:
			return fmt.Errorf("ledger: register a branch of %s (status %v): %w", g.XID, g.Status, protocol.ErrNotBegin)
		case g.LocksReleased:
			return fmt.Errorf("ledger: register a branch of %s (locks released): %w", g.XID, protocol.ErrNotBegin)
		case !g.Deadline.IsZero() && !now.Before(g.Deadline):
			return fmt.Errorf("ledger: register a branch of %s: %w", g.XID, protocol.ErrTimedOut)
		}
		return nil
	}
}

// refusal answers a registration whose keys conflict: if the global
// refuses registrations anyway, that is the answer (as if it had been
// checked first), else the conflict.
func (l *Ledger) refusal(ctx context.Context, xid string, begin *storage.Global, admit storage.Admit, conflict error) error {
	g, err := l.store.GetGlobal(ctx, xid)
	switch {
	case errors.Is(err, storage.ErrNotFound) && begin != nil:
		g = begin
	case err != nil:
		return err
	}
	if err := admit(g); err != nil {
		return err
	}
	return conflict
}
