package datasource

import (
	"context"
	"database/sql/driver"

	"github.com/xact-io/xact/internal/global"
)

// scope is what a local transaction belongs to.
type scope struct {
	// xid is the global transaction the work is a branch of; "" for none.
	xid string
	// globalLock marks a local transaction outside any global one that
	// must not touch rows global transactions hold.
	globalLock bool
}

func (s scope) global() bool { return s.xid != "" || s.globalLock }

type globalLockKey struct{}

// WithGlobalLockContext returns a context whose local transactions respect
// global locks without joining a global transaction (Seata's @GlobalLock).
// Begin a transaction with it, or run a statement with it outside one:
//
//	tx, err := db.BeginTx(datasource.WithGlobalLockContext(ctx), nil)
//
// Such a transaction writes no undo log and registers no branch, but its
// SELECT … FOR UPDATE waits (within the lock-wait budget) for rows that a
// global transaction holds, and its commit waits until no global
// transaction holds a row it wrote, else it rolls back and fails with
// ErrLockConflict. Plain reads are not checked. A context that carries an
// XID makes a branch instead, which respects global locks anyway.
func WithGlobalLockContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, globalLockKey{}, true)
}

// scopeOf reads a context's scope: its XID (tm.XID) and whether it asks
// for global locks.
func scopeOf(ctx context.Context) scope {
	if xid, ok := global.XID(ctx); ok && xid != "" {
		return scope{xid: xid}
	}
	if v, _ := ctx.Value(globalLockKey{}).(bool); v {
		return scope{globalLock: true}
	}
	return scope{}
}

// tx is a local transaction on a conn.
//
// Its scope is decided by the context given to BeginTx, once, as Seata
// binds at begin: a statement run in the transaction with another context
// (even context.Background()) still belongs to it; a write whose context
// names a different global transaction is refused with ErrXIDMismatch.
type tx struct {
	c     *conn
	state *txState
}

var _ driver.Tx = (*tx)(nil)

// Commit commits the local transaction. For a branch this registers the
// branch with its row locks, writes the undo log and commits, in that
// order; see txState.commit.
func (t *tx) Commit() error {
	defer t.end()
	return t.state.commit()
}

// Rollback rolls the local transaction back. A branch registers only at
// commit, so there is nothing to tell the TC.
func (t *tx) Rollback() error {
	defer t.end()
	return t.state.inner.Rollback()
}

func (t *tx) end() {
	if t.c.tx == t {
		t.c.tx = nil
	}
}
