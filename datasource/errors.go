package datasource

import (
	"errors"
	"fmt"
	"time"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/undo"
)

// Errors returned by this package. Errors of statements and commits wrap
// the underlying cause as well (the dialect's, the driver's, the TC's), so
// errors.Is and errors.As reach them.
var (
	// ErrUnsupported reports a statement that AT mode cannot compensate
	// inside a global transaction (DDL, REPLACE, INSERT … SELECT without
	// the primary key, a table without a primary key, …). It is returned
	// before the statement runs; the wrapped dialect error
	// (mysql.ErrUnsupported) says why and, where there is one, what to do
	// instead. A savepoint statement run outside a local transaction is
	// refused with it too (see the package documentation, Savepoints).
	ErrUnsupported = errors.New("datasource: statement not supported in a global transaction")
	// ErrLockConflict reports a row that another global transaction held
	// for longer than the lock-wait budget (WithLockWait). The concrete
	// error is a *LockConflictError naming the table, key and holder. The
	// local transaction has been rolled back (at commit) or must be (at
	// SELECT … FOR UPDATE).
	ErrLockConflict = errors.New("datasource: row locked by another global transaction")
	// ErrAborted reports a local transaction that can only be rolled
	// back: a statement ran but its undo could not be completed (the
	// wrapped error says why), or the database ended the transaction
	// itself (a deadlock). Commit rolls it back and returns this error.
	ErrAborted = errors.New("datasource: local transaction aborted")
	// ErrBranchRolledBack reports a local commit that arrived after the
	// TC had already rolled its branch back (the global timed out or was
	// rolled back while the commit was on its way): the undo-log insert
	// met the rollback's "global finished" marker, so nothing was
	// committed (invariant I8).
	ErrBranchRolledBack = errors.New("datasource: branch was rolled back before its local commit")
	// ErrXIDMismatch reports a write whose context carries a global
	// transaction other than the one its local transaction was begun in
	// (or a global transaction, when the local transaction was begun
	// outside any). A transaction joins the global of the context given
	// to BeginTx, as in Seata; begin it with the global's context.
	ErrXIDMismatch = errors.New("datasource: statement's global transaction differs from its local transaction's")
	// ErrNoRM reports global work (an XID or a global-lock request in the
	// context) on a data source opened without WithRM.
	ErrNoRM = errors.New("datasource: no resource manager (open the data source with WithRM)")
	// ErrInvalidOption reports a bad option or argument to NewConnector or
	// Open.
	ErrInvalidOption = errors.New("datasource: invalid option")
	// ErrClosed reports use of a closed Connector.
	ErrClosed = errors.New("datasource: closed")
	// ErrNoGlobalTransaction reports a statement that writes or locks
	// rows with a context that carries no global transaction, on a data
	// source opened WithGlobalWritesOnly.
	ErrNoGlobalTransaction = errors.New("datasource: statement writes outside a global transaction: its context carries no XID")
	// ErrUndoLogTable reports that the database has no usable undo_log
	// table (missing, a column missing, or without its unique key on
	// (xid, branch_id)); Ping returns it. `xact sql undo-log` prints the
	// DDL (undo.LogTableDDL).
	ErrUndoLogTable = errors.New("datasource: undo_log table missing or not usable")
)

// LockConflictError names the row another global transaction holds. It
// matches ErrLockConflict and protocol.ErrLockConflict with errors.Is, and
// errors.As finds the TC's *protocol.LockConflictError in it.
type LockConflictError struct {
	Resource string
	Table    string // the table of Key
	Key      string // the canonical lock key (undo.LockKey)
	Holder   string // XID of the global transaction holding it
	// HolderRollingBack is true when the holder is rolling back; the
	// wait ended at once (see WithLockWaitOnRollback).
	HolderRollingBack bool
	// Waited is how long the statement or commit waited for the lock.
	Waited time.Duration
	// Cause is the TC's answer.
	Cause *protocol.LockConflictError
}

// Error names the row, its table and resource, the holder and the wait.
func (e *LockConflictError) Error() string {
	if e.HolderRollingBack {
		return fmt.Sprintf("datasource: row %q of table %s on %s is locked by global transaction %s, which is rolling back and needs this transaction's row lock to compensate it (waited %v)",
			e.Key, e.Table, e.Resource, e.Holder, e.Waited.Round(time.Millisecond))
	}
	return fmt.Sprintf("datasource: row %q of table %s on %s is locked by global transaction %s (waited %v)",
		e.Key, e.Table, e.Resource, e.Holder, e.Waited.Round(time.Millisecond))
}

// Unwrap returns ErrLockConflict and the TC's error.
func (e *LockConflictError) Unwrap() []error {
	if e.Cause == nil {
		return []error{ErrLockConflict}
	}
	return []error{ErrLockConflict, e.Cause}
}

func newLockConflict(lc *protocol.LockConflictError, waited time.Duration) *LockConflictError {
	return &LockConflictError{
		Resource:          lc.Resource,
		Table:             undo.LockKeyTable(lc.Key),
		Key:               lc.Key,
		Holder:            lc.Holder,
		Waited:            waited,
		HolderRollingBack: lc.HolderRollingBack,
		Cause:             lc,
	}
}
