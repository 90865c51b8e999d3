// Package mysql is the MySQL/MariaDB dialect of AT mode: it parses a
// statement (TiDB parser), decides whether its undo can be built, builds
// and runs the before- and after-image queries on the branch's own
// connection, turns rows into undo records and lock keys, reads table
// metadata from information_schema, and replays undo logs at rollback.
//
// The datasource wrapper drives it per statement inside a branch, on the
// inner driver.Conn that runs the local transaction:
//
//	d := mysql.New() // one per resource (database); safe for concurrent use
//
//	plan, err := d.Prepare(ctx, conn, query, args)
//	if errors.Is(err, mysql.ErrUnsupported) {
//		return err // refused before anything ran; the message names the reason
//	}
//	if err := plan.Before(ctx, conn); err != nil { … } // SELECT … FOR UPDATE of the rows it will touch
//	// SELECT … FOR UPDATE: plan.LockKeys() is ready here; ask the TC.
//	res, err := runTheStatement()  // QueryContext if plan.Returning() (MariaDB RETURNING), then res = nil
//	if err := plan.After(ctx, conn, res); err != nil { … } // ErrImageMismatch: roll the local transaction back
//	log.Records = append(log.Records, plan.Records()...)
//	lockKeys = append(lockKeys, plan.LockKeys()...)
//
// At local commit the wrapper registers the branch with the lock keys and
// inserts undo.Encode(&log) into undo_log. At phase-two rollback, in one
// local transaction on a connection it owns:
//
//	log, err := undo.Decode(rollbackInfo) // from undo.SelectLogSQL
//	err = d.Undo(ctx, conn, log, action.LockKeys) // *undo.DirtyError: park the branch (rm.Permanent)
//	// then undo.DeleteLogSQL, commit
//
// # Supported
//
// INSERT (single and multi-row, VALUES or SET, with generated
// AUTO_INCREMENT keys or explicit keys given as literals or placeholders),
// INSERT IGNORE with explicit keys, INSERT … ON DUPLICATE KEY UPDATE,
// INSERT … SELECT that supplies the whole primary key (the SELECT runs
// first, LOCK IN SHARE MODE, to learn the keys),
// UPDATE and DELETE with WHERE, ORDER BY and LIMIT, multi-table UPDATE and
// DELETE (joins, aliases, USING), composite primary keys, tables without
// a primary key that have a unique key over NOT NULL columns (the first
// such key by name is the row key: every process picks the same one), SELECT … FOR
// UPDATE [NOWAIT | SKIP LOCKED | WAIT n] (lock keys only), and MariaDB's
// INSERT … RETURNING and DELETE … RETURNING (the clause is cut off for
// parsing; the statement runs unchanged). Plain reads, SHOW, SET, EXPLAIN
// and DO pass through (KindOther). SAVEPOINT, ROLLBACK [WORK] TO
// [SAVEPOINT] and RELEASE SAVEPOINT are KindSavepoint: not planned, run
// unchanged; Statement.Savepoint tells the caller which marks to move.
//
// # Refused, with ErrUnsupported, before the statement runs
//
// REPLACE, INSERT … SELECT without the primary key (or with SELECT *,
// LIMIT, a set operation, IGNORE or an upsert), LOAD DATA, CALL, DDL (also reported by
// Classify so a wrapper can Invalidate metadata), transaction control in
// SQL text other than savepoints (START TRANSACTION, COMMIT, ROLLBACK),
// savepoint names that are empty or not ASCII, SET autocommit, LOCK
// TABLES, USE; tables without
// a primary key or a unique key over NOT NULL columns, on a
// non-transactional engine, views, temporary and
// system-versioned tables, tables with triggers for the statement's
// event, DELETE from (and UPDATE of unique columns of) a table that a
// cascading foreign key references; UPDATE of a primary-key column; INSERT
// mixing generated and explicit AUTO_INCREMENT keys, key values that are
// expressions, INSERT IGNORE with generated keys, upserts on prefix unique
// keys; WHERE/ORDER BY/LIMIT with RAND(), UUID(), SYSDATE() or an
// assignment (the image query would pick other rows); tables of another
// database; multiple statements in one query; MariaDB syntax the parser
// does not know, unless the statement is read-only.
//
// # Key conditions
//
// Every statement the dialect builds to find rows by key (after images,
// the rows an upsert may hit, dirty checks, compensating DELETE and
// UPDATE) spells a composite key as ORed equalities, "(a = ? AND b = ?)
// OR …", never as a row constructor "(a, b) IN ((?, ?))", which MariaDB
// 10.11 reads with a full scan in DELETE; TestKeyStatementsUseIndex
// EXPLAINs each one on several key shapes.
//
// # Values
//
// Image queries read each column through an expression chosen by its type
// so that the value is exact whatever the driver settings (text or binary
// protocol, interpolateParams, parseTime, loc) and the session
// (time_zone, character set): FLOAT through CAST(… AS DOUBLE), DATE,
// DATETIME and TIME as the server's text, TIMESTAMP as UNIX_TIMESTAMP
// (stored as UTC text and written back with the session pinned to UTC),
// character columns as their raw bytes (written back as hex through
// CONVERT(UNHEX(?) USING charset) COLLATE collation). Integers and
// decimals are never floats. See value.go.
//
// # Limits
//
// The parser reads SQL as the default sql_mode does: a session with
// ANSI_QUOTES or NO_BACKSLASH_ESCAPES would read the rebuilt image
// queries differently. A WHERE clause is evaluated twice (image query and
// statement), so a stored function with side effects in it runs twice.
// An ENUM column holding the empty error value cannot be written back under
// strict sql_mode.
//
// # Isolation
//
// The before image locks the rows the statement will change. Under
// REPEATABLE READ (the default), next-key locks keep the statement from
// matching rows its image missed; under READ COMMITTED a row inserted in
// between can slip in, and After reports it as ErrImageMismatch from the
// affected-row count.
//
// # The server
//
// The server error numbers the wrapper and the TCC fence react to
// (deadlock, lock-wait timeout, duplicate key, …) are named in the
// subpackage errno, which reads them from go-sql-driver's errors and does
// not link the parser. RollsBackOnTimeout reads whether a lock-wait
// timeout ends the whole transaction (innodb_rollback_on_timeout).
package mysqldialect
