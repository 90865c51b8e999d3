package datasource

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/xact-io/xact/datasource/mysqldialect"
)

// conn wraps one driver connection.
//
// It claims the optional interfaces of database/sql that the wrapper needs
// to see every transaction and statement with its context, and for each
// of them behaves exactly as database/sql does when the inner connection
// lacks the interface:
//
//	ConnBeginTx         inner BeginTx, else Begin (non-default options refused, as database/sql does)
//	ConnPrepareContext  inner PrepareContext, else Prepare (then the context is checked)
//	NamedValueChecker   inner CheckNamedValue, else driver.ErrSkip (database/sql's default conversion)
//	SessionResetter     clears the wrapper's state, then inner ResetSession if it has one
//	Validator           false after an uncertain failure, else inner IsValid, else true
//	Pinger              inner Ping, else nil; then the undo_log check
//
// ExecerContext and QueryerContext are claimed only when the inner
// connection has them (or their deprecated forms Execer and Queryer), by
// the types connExec, connQuery and connExecQuery: without them
// database/sql prepares every statement with arguments, and the wrapper
// captures it on the prepared statement. The deprecated Execer and
// Queryer themselves are never claimed.
type conn struct {
	c     *Connector
	inner driver.Conn
	// tx is the open local transaction, nil between transactions. A
	// statement on the connection while it is set belongs to it.
	tx *tx
	// bad is set when the connection's session state is uncertain (a
	// commit that failed after the branch registered): database/sql
	// discards it instead of pooling it.
	bad bool
	// parsed caches parsed statements (a connection is used by one
	// goroutine at a time, so it needs no lock).
	parsed map[string]*mysqldialect.Statement
}

var (
	_ driver.Conn               = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)

	_ driver.ExecerContext  = connExec{}
	_ driver.QueryerContext = connQuery{}
	_ driver.ExecerContext  = connExecQuery{}
	_ driver.QueryerContext = connExecQuery{}
)

// connExec is a conn whose inner connection executes statements directly.
type connExec struct{ *conn }

// ExecContext runs a statement; see conn.exec.
func (c connExec) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.exec(ctx, query, args)
}

// connQuery is a conn whose inner connection runs queries directly.
type connQuery struct{ *conn }

// QueryContext runs a query; see conn.query.
func (c connQuery) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.query(ctx, query, args)
}

// connExecQuery is a conn whose inner connection does both.
type connExecQuery struct{ *conn }

// ExecContext runs a statement; see conn.exec.
func (c connExecQuery) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.exec(ctx, query, args)
}

// QueryContext runs a query; see conn.query.
func (c connExecQuery) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.query(ctx, query, args)
}

// maxParsed bounds the per-connection statement cache.
const maxParsed = 512

// newConn wraps inner in the conn type that claims what inner has.
func newConn(c *Connector, inner driver.Conn) driver.Conn {
	cn := &conn{c: c, inner: inner}
	_, ec := inner.(driver.ExecerContext)
	_, e := inner.(driver.Execer) //nolint:staticcheck // database/sql uses it
	_, qc := inner.(driver.QueryerContext)
	_, q := inner.(driver.Queryer) //nolint:staticcheck // database/sql uses it
	switch exec, query := ec || e, qc || q; {
	case exec && query:
		return connExecQuery{cn}
	case exec:
		return connExec{cn}
	case query:
		return connQuery{cn}
	}
	return cn
}

// Prepare implements driver.Conn.
func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// PrepareContext prepares query on the inner connection. Executions of the
// statement are captured like statements sent directly.
func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	si, err := c.innerPrepare(ctx, query)
	if err != nil {
		return nil, err
	}
	return &stmt{c: c, inner: si, query: query}, nil
}

// Close closes the inner connection.
func (c *conn) Close() error {
	c.tx = nil
	return c.inner.Close()
}

// Begin implements driver.Conn; database/sql calls BeginTx instead.
func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// BeginTx begins a local transaction. Its context decides, once, what
// the transaction is: a branch of the global transaction whose XID it
// carries, a local transaction that respects global locks
// (WithGlobalLockContext), or a plain local transaction.
func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.tx != nil {
		return nil, errors.New("datasource: connection already in a transaction")
	}
	s := scopeOf(ctx)
	if s.global() && c.c.cfg.rm == nil {
		return nil, ErrNoRM
	}
	if err := c.c.usable(s); err != nil {
		return nil, err
	}
	it, err := c.innerBegin(ctx, opts)
	if err != nil {
		return nil, err
	}
	t := &tx{c: c, state: newTxState(ctx, c, s, it, false)}
	c.tx = t
	return t, nil
}

// exec runs a statement. Inside a global transaction it is captured:
// refused if it cannot be undone, else imaged before and after.
func (c *conn) exec(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	s, st, err := c.route(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		res, err := c.innerExec(ctx, query, args)
		if err == nil {
			c.c.noteDDL(query)
		}
		return res, err
	}
	run := func(ctx context.Context) (driver.Result, error) { return c.execDirect(ctx, query, args) }
	if c.tx != nil {
		return c.tx.state.exec(ctx, st, args, run)
	}
	var res driver.Result
	err = c.autocommit(ctx, s, func(ts *txState) error {
		var err error
		res, err = ts.exec(ctx, st, args, run)
		return err
	})
	return res, err
}

// query runs a query; see exec.
func (c *conn) query(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	s, st, err := c.route(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return c.innerQuery(ctx, query, args)
	}
	run := func(ctx context.Context) (driver.Rows, error) { return c.queryDirect(ctx, query, args) }
	if c.tx != nil {
		return c.tx.state.query(ctx, st, args, run)
	}
	var rows driver.Rows
	err = c.autocommit(ctx, s, func(ts *txState) error {
		var err error
		rows, err = ts.query(ctx, st, args, run)
		return err
	})
	return rows, err
}

// route decides how a statement runs. It returns a nil statement when the
// statement goes to the inner connection untouched: outside global work,
// and for statements that neither write nor lock rows (plain reads are
// read-uncommitted across global transactions, as in Seata).
func (c *conn) route(ctx context.Context, query string) (scope, *mysqldialect.Statement, error) {
	s, mismatch, err := c.scope(ctx)
	if err != nil {
		return s, nil, err
	}
	if !s.global() && !mismatch {
		if c.c.cfg.globalOnly {
			return s, nil, c.checkGlobalOnly(query)
		}
		return s, nil, nil
	}
	st, err := c.parse(query)
	if err != nil {
		return s, nil, refusal(query, mismatch, err)
	}
	st, err = c.routeParsed(ctx, mismatch, st)
	return s, st, err
}

// checkGlobalOnly refuses, under WithGlobalWritesOnly, a statement that
// writes or locks rows outside global work: most often a context from
// outside tm.Do's callback, which would commit at once and never be
// compensated.
func (c *conn) checkGlobalOnly(query string) error {
	st, err := c.parse(query)
	if err != nil {
		return nil // not ours to judge: it runs as it would without xact
	}
	switch st.Kind() {
	case mysqldialect.KindOther, mysqldialect.KindSavepoint, mysqldialect.KindDDL:
		return nil
	}
	return fmt.Errorf("%w: %s on %s (WithGlobalWritesOnly); use the context tm.Do passes to its callback, or WithGlobalLockContext",
		ErrNoGlobalTransaction, firstWord(query), c.c.cfg.resource)
}

// routeParsed is the second half of route, for a statement in global
// scope or with a mismatched context: nil for a statement that goes to
// the inner connection untouched.
//
// A savepoint statement belongs to the transaction it is sent in,
// whatever global transaction its context names (it writes nothing): a
// branch or a global-lock transaction keeps its marks, a plain local
// transaction needs none. Outside a transaction it is refused: the
// wrapper's own transaction around one statement cannot keep a savepoint
// for the next (MySQL would take SAVEPOINT as a no-op and fail the
// ROLLBACK TO that follows with ER_SP_DOES_NOT_EXIST).
func (c *conn) routeParsed(ctx context.Context, mismatch bool, st *mysqldialect.Statement) (*mysqldialect.Statement, error) {
	switch st.Kind() {
	case mysqldialect.KindOther:
		return nil, nil
	case mysqldialect.KindSavepoint:
		switch {
		case c.tx == nil:
			return nil, fmt.Errorf("%w: %s outside a transaction: a statement run directly on the *sql.DB with a global context is a local transaction of its own, which cannot keep a savepoint for the next statement; begin a transaction (BeginTx) and set savepoints in it",
				ErrUnsupported, st.Savepoint().Op)
		case !c.tx.state.scope.global():
			return nil, nil
		}
		return st, nil
	}
	if mismatch {
		return nil, mismatchError(ctx, c.tx)
	}
	return st, nil
}

// scope returns the scope a statement run with ctx belongs to: its
// transaction's, if one is open (mismatch reports a context that names
// another global transaction), else the context's own.
func (c *conn) scope(ctx context.Context) (s scope, mismatch bool, err error) {
	cs := scopeOf(ctx)
	if c.tx != nil {
		ts := c.tx.state.scope
		return ts, cs.xid != "" && cs.xid != ts.xid, nil
	}
	if cs.global() && c.c.cfg.rm == nil {
		return cs, false, ErrNoRM
	}
	if err := c.c.usable(cs); err != nil {
		return cs, false, err
	}
	return cs, false, nil
}

// refusal is the error for a statement the dialect cannot parse or
// plan. MariaDB's RETURNING is supported on INSERT and DELETE only; gorm
// adds it to other statements when asked to, and its driver can be told
// not to.
func refusal(query string, mismatch bool, err error) error {
	if mismatch {
		return fmt.Errorf("%w: %w", ErrXIDMismatch, err)
	}
	if strings.Contains(strings.ToUpper(query), "RETURNING") {
		return fmt.Errorf("%w: %w (RETURNING is supported on INSERT and DELETE only; with gorm, leave out clause.Returning or set DisableWithReturning in gorm.io/driver/mysql's Config)", ErrUnsupported, err)
	}
	return fmt.Errorf("%w: %w", ErrUnsupported, err)
}

func mismatchError(ctx context.Context, t *tx) error {
	xid := scopeOf(ctx).xid
	if t.state.scope.xid == "" {
		return fmt.Errorf("%w: the context carries %s, the transaction was begun outside any global transaction", ErrXIDMismatch, xid)
	}
	return fmt.Errorf("%w: the context carries %s, the transaction belongs to %s", ErrXIDMismatch, xid, t.state.scope.xid)
}

// parse returns the parsed statement of query from the connection's cache.
func (c *conn) parse(query string) (*mysqldialect.Statement, error) {
	if st, ok := c.parsed[query]; ok {
		return st, nil
	}
	st, err := mysqldialect.Parse(query)
	if err != nil {
		return nil, err
	}
	if c.parsed == nil || len(c.parsed) >= maxParsed {
		c.parsed = make(map[string]*mysqldialect.Statement)
	}
	c.parsed[query] = st
	return st, nil
}

// autocommit runs a statement sent outside a local transaction in global
// scope as a local transaction of its own: a branch of its own (Seata's
// autocommit mode), or a global-lock check. On a lock conflict the whole
// local transaction is rolled back, releasing its row locks, and run
// again after a pause, within the lock-wait budget: nothing holds rows
// while it waits.
func (c *conn) autocommit(ctx context.Context, s scope, run func(*txState) error) error {
	w := c.c.newWaiter()
	for {
		it, err := c.innerBegin(ctx, driver.TxOptions{})
		if err != nil {
			return err
		}
		ts := newTxState(ctx, c, s, it, true)
		if err = run(ts); err != nil {
			ts.rollback()
		} else {
			err = ts.commit()
		}
		var lc *LockConflictError
		if !errors.As(err, &lc) {
			return err
		}
		if !w.again(ctx) {
			lc.Waited = w.waited()
			return err
		}
	}
}

// CheckNamedValue forwards to the inner connection's checker, or lets
// database/sql convert the value as it would without one.
func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	if nvc, ok := c.inner.(driver.NamedValueChecker); ok {
		return nvc.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// ResetSession clears the per-connection transaction state before the
// connection is reused, and resets the inner session. A connection that
// still has a transaction open, or whose state is uncertain, is refused
// with driver.ErrBadConn so that database/sql discards it.
func (c *conn) ResetSession(ctx context.Context) error {
	if c.tx != nil || c.bad {
		c.tx = nil
		return driver.ErrBadConn
	}
	if sr, ok := c.inner.(driver.SessionResetter); ok {
		return sr.ResetSession(ctx)
	}
	return nil
}

// IsValid reports whether the connection may go back to the pool.
func (c *conn) IsValid() bool {
	if c.bad || c.tx != nil {
		return false
	}
	if v, ok := c.inner.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// Ping forwards to the inner connection if it can ping.
func (c *conn) Ping(ctx context.Context) error {
	if p, ok := c.inner.(driver.Pinger); ok {
		if err := p.Ping(ctx); err != nil {
			return err
		}
	}
	return c.checkUndoTable(ctx)
}
