// Package datasource is xact's AT mode: a database/sql wrapper for MySQL
// and MariaDB whose local transactions become branches of global
// transactions, compensated automatically from undo logs.
//
// The application opens its *sql.DB through the package and keeps its
// code:
//
//	rmc := rm.New(conn)                        // the TC connection, shared with the tm.Manager
//	db, err := datasource.Open("mysql", dsn, datasource.WithRM(rmc))
//	rmc.Start(ctx)                             // phase two arrives on the RM's stream
//
//	err = mgr.Do(ctx, tm.Options{Name: "transfer", Timeout: 10 * time.Second}, func(ctx context.Context) error {
//		tx, err := db.BeginTx(ctx, nil)        // ctx carries the XID: this transaction is a branch
//		if err != nil {
//			return err
//		}
//		defer tx.Rollback()
//		if _, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance - ? WHERE id = ?", amt, from); err != nil {
//			return err
//		}
//		return tx.Commit()                     // registers the branch with its row locks, writes the undo log, commits
//	})
//
// Use the ctx that Do passes to its callback: a statement run with the
// outer context carries no XID, so it is an ordinary local transaction
// that commits at once and is never compensated. WithGlobalWritesOnly
// refuses such writes (ErrNoGlobalTransaction).
//
// Every database a branch writes to needs the undo_log table
// (undo.LogTableDDL; `xact sql undo-log` prints it); Ping checks it
// (ErrUndoLogTable).
//
// # Phase one
//
// Inside a branch every statement is parsed (TiDB's parser, through
// datasource/mysqldialect). Reads run untouched: across global transactions they
// are read-uncommitted, as in Seata. A DML statement is planned by the
// dialect; if its undo cannot be built (DDL, REPLACE, INSERT … SELECT that does not supply the primary key, a
// table without primary key, …) it is refused with ErrUnsupported before
// it runs. Otherwise its before image is read FOR UPDATE, the statement
// runs, its after image is read by primary key, and the undo records and
// row lock keys are kept with the transaction. Commit then registers the
// branch with the TC with all lock keys (waiting, within the lock-wait
// budget, for rows another global transaction holds, else rolling back
// and failing with ErrLockConflict), inserts the undo log and commits
// locally. A local transaction that wrote nothing registers nothing.
//
// A statement run directly on the *sql.DB (no transaction) with a global
// context is a local transaction and a branch of its own. On a lock
// conflict it is rolled back and run again after a pause, so it holds no
// rows while it waits.
//
// SELECT … FOR UPDATE in a global transaction locks its rows locally,
// then asks the TC whether another global transaction holds any of them,
// and waits within the budget (holding its local locks) before failing
// with ErrLockConflict.
//
// The scope of a local transaction is decided by the context given to
// BeginTx, once (Seata binds at begin): its statements belong to it
// whatever context they run with, and a write whose context names another
// global transaction is refused with ErrXIDMismatch. A transaction begun
// with WithGlobalLockContext writes no undo but respects global locks.
//
// # Savepoints
//
// A branch or a global-lock transaction may use SAVEPOINT, ROLLBACK
// [WORK] TO [SAVEPOINT] and RELEASE SAVEPOINT (gorm's nested
// transactions do). Each runs on the database first and, only if the
// database accepted it, moves the transaction's marks as MySQL moves its
// savepoints: names compare case-insensitively, a SAVEPOINT replaces one
// of the same name, ROLLBACK TO keeps the savepoint and forgets later
// ones, RELEASE forgets it and later ones. ROLLBACK TO drops the undo
// records and row lock keys taken after the savepoint: the database has
// undone those changes, so they are neither replayed at a global rollback
// nor registered with the TC. An unknown name fails with the database's
// own error (ER_SP_DOES_NOT_EXIST, 1305) and changes nothing. Names must
// be ASCII (the server compares other names accent-insensitively, which
// the wrapper does not reproduce). Outside a transaction a savepoint
// statement with a global context is refused with ErrUnsupported: the
// wrapper's own transaction around one statement cannot keep a savepoint
// for the next. Other transaction control in SQL text (START
// TRANSACTION, COMMIT, ROLLBACK, SET autocommit, LOCK TABLES) stays
// refused: it would end the local transaction behind the wrapper's back.
//
// # Phase two
//
// A Connector created with WithRM serves phase two for its resource id.
// Commit deletes the branch's undo log, batched with others arriving at
// the same time, and answers after the delete committed. Rollback replays
// the log in reverse in one local transaction, after checking that every
// row it touches is within the branch's registered lock keys and that
// every table and column still exists, with a dirty check per row: a row
// as the branch left it is restored; a row already restored is skipped; a
// row someone else changed fails the rollback permanently (rm.Permanent)
// with nothing changed, and the TC parks the branch with the reason. A
// rollback that finds no undo log leaves a "global finished" marker, so a
// local commit still on its way fails with ErrBranchRolledBack instead of
// committing a change nobody would undo.
//
// Phase two runs on a pool of its own, which by default is as large as
// the application's (the *sql.DB from Open or OpenDB; at least
// DefaultPhaseTwoConns, rm.DefaultConcurrency if that pool is unlimited or
// unknown; WithPhaseTwo fixes it). A rollback whose rows the application's
// transactions hold waits for them at most WithPhaseTwoLockWait
// (DefaultPhaseTwoLockWait, a session setting of the phase-two
// connections), then answers an unknown outcome and frees its connection;
// the TC retries it with backoff. So rollbacks stuck behind locks neither
// hang nor keep the others from running; the rm.Client's
// WithActionTimeout bounds each action as a whole.
//
// # Limits
//
//   - One Connector per resource id per rm.Client: a second one replaces
//     the first as the phase-two handler of the resource.
//   - Phase-two commit deletes the undo log it finds. A local commit that
//     completes after its global transaction committed (a commit still
//     running when the function given to tm.Do returned) leaves its undo
//     log behind; it is never replayed, but nothing deletes it either.
//   - A branch's row count is bounded by the TC's MaxLockKeys, its undo
//     log by max_allowed_packet; beyond them the commit fails and rolls
//     back.
//   - DDL, transaction control other than savepoints, LOCK TABLES and
//     statements the dialect cannot image are refused in a global
//     transaction (ErrUnsupported).
//
// # database/sql fidelity
//
// Statements are captured whether they arrive through ExecContext and
// QueryContext or through prepared statements (the path database/sql
// takes when go-sql-driver/mysql answers driver.ErrSkip, that is with
// arguments and without interpolateParams). The wrapper claims a fixed set
// of optional driver interfaces and, for each, does what database/sql does
// when the inner driver lacks it (see the conn type); NamedValueChecker
// is forwarded. Connections are reset between uses, and one whose commit
// failed after registering is discarded. TC calls made by a commit run
// detached from the caller's cancellation, under WithCommitTimeout.
package datasource
