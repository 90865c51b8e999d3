package datasource

import (
	"context"
	"database/sql/driver"

	"github.com/xact-io/xact/datasource/mysqldialect"
)

// stmt wraps a prepared statement. Its executions are captured like
// statements sent on the connection: this is the path database/sql takes
// when the inner connection answers driver.ErrSkip (go-sql-driver/mysql
// with arguments and without interpolateParams), and the path of
// explicitly prepared statements.
//
// It claims StmtExecContext and StmtQueryContext (falling back to the
// inner Exec and Query as database/sql does) and NamedValueChecker
// (forwarding to the inner statement's checker, else the inner
// connection's, else driver.ErrSkip: the order database/sql uses). An
// inner ColumnConverter, deprecated, is not forwarded.
type stmt struct {
	c     *conn
	inner driver.Stmt
	query string
	// st is the parsed statement, read on first captured execution.
	st *mysqldialect.Statement
}

var (
	_ driver.Stmt              = (*stmt)(nil)
	_ driver.StmtExecContext   = (*stmt)(nil)
	_ driver.StmtQueryContext  = (*stmt)(nil)
	_ driver.NamedValueChecker = (*stmt)(nil)
)

// Close closes the inner statement.
func (s *stmt) Close() error { return s.inner.Close() }

// NumInput returns the inner statement's number of placeholders.
func (s *stmt) NumInput() int { return s.inner.NumInput() }

// Exec implements driver.Stmt; database/sql calls ExecContext.
func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), named(args))
}

// Query implements driver.Stmt; database/sql calls QueryContext.
func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), named(args))
}

// ExecContext executes the statement, captured in global scope.
func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	sc, st, err := s.route(ctx)
	if err != nil {
		return nil, err
	}
	if st == nil {
		res, err := stmtExec(ctx, s.inner, args)
		if err == nil {
			s.c.c.noteDDL(s.query)
		}
		return res, err
	}
	run := func(ctx context.Context) (driver.Result, error) { return stmtExec(ctx, s.inner, args) }
	if s.c.tx != nil {
		return s.c.tx.state.exec(ctx, st, args, run)
	}
	var res driver.Result
	err = s.c.autocommit(ctx, sc, func(ts *txState) error {
		var err error
		res, err = ts.exec(ctx, st, args, run)
		return err
	})
	return res, err
}

// QueryContext executes the query, captured in global scope.
func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	sc, st, err := s.route(ctx)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return stmtQuery(ctx, s.inner, args)
	}
	run := func(ctx context.Context) (driver.Rows, error) { return stmtQuery(ctx, s.inner, args) }
	if s.c.tx != nil {
		return s.c.tx.state.query(ctx, st, args, run)
	}
	var rows driver.Rows
	err = s.c.autocommit(ctx, sc, func(ts *txState) error {
		var err error
		rows, err = ts.query(ctx, st, args, run)
		return err
	})
	return rows, err
}

// route is conn.route for the prepared statement, parsing it once.
func (s *stmt) route(ctx context.Context) (scope, *mysqldialect.Statement, error) {
	sc, mismatch, err := s.c.scope(ctx)
	if err != nil {
		return sc, nil, err
	}
	if !sc.global() && !mismatch {
		if s.c.c.cfg.globalOnly {
			return sc, nil, s.c.checkGlobalOnly(s.query)
		}
		return sc, nil, nil
	}
	if s.st == nil {
		st, err := s.c.parse(s.query)
		if err != nil {
			return sc, nil, refusal(s.query, mismatch, err)
		}
		s.st = st
	}
	st, err := s.c.routeParsed(ctx, mismatch, s.st)
	return sc, st, err
}

// CheckNamedValue forwards to the inner statement's or connection's
// checker, in database/sql's order.
func (s *stmt) CheckNamedValue(nv *driver.NamedValue) error {
	if nvc, ok := s.inner.(driver.NamedValueChecker); ok {
		return nvc.CheckNamedValue(nv)
	}
	return s.c.CheckNamedValue(nv)
}

// stmtExec executes si as database/sql would.
func stmtExec(ctx context.Context, si driver.Stmt, args []driver.NamedValue) (driver.Result, error) {
	if e, ok := si.(driver.StmtExecContext); ok {
		return e.ExecContext(ctx, args)
	}
	vals, err := values(args)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return si.Exec(vals) //nolint:staticcheck // database/sql's fallback
}

// stmtQuery queries si as database/sql would.
func stmtQuery(ctx context.Context, si driver.Stmt, args []driver.NamedValue) (driver.Rows, error) {
	if q, ok := si.(driver.StmtQueryContext); ok {
		return q.QueryContext(ctx, args)
	}
	vals, err := values(args)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return si.Query(vals) //nolint:staticcheck // database/sql's fallback
}
