package datasource

import (
	"context"
	"database/sql/driver"
	"errors"

	"github.com/xact-io/xact/datasource/mysqldialect"
)

// The inner calls below follow database/sql's fallbacks (ctxutil.go).

func (c *conn) innerBegin(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := c.inner.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	if opts.Isolation != driver.IsolationLevel(0) {
		return nil, errors.New("sql: driver does not support non-default isolation level")
	}
	if opts.ReadOnly {
		return nil, errors.New("sql: driver does not support read-only transactions")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, err := c.inner.Begin() //nolint:staticcheck // the fallback database/sql uses
	if err == nil {
		select {
		case <-ctx.Done():
			t.Rollback()
			return nil, ctx.Err()
		default:
		}
	}
	return t, err
}

func (c *conn) innerPrepare(ctx context.Context, query string) (driver.Stmt, error) {
	if p, ok := c.inner.(driver.ConnPrepareContext); ok {
		return p.PrepareContext(ctx, query)
	}
	si, err := c.inner.Prepare(query)
	if err == nil {
		select {
		case <-ctx.Done():
			si.Close()
			return nil, ctx.Err()
		default:
		}
	}
	return si, err
}

// innerExec runs query on the inner connection; it returns driver.ErrSkip
// when the inner connection wants a prepared statement instead.
func (c *conn) innerExec(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if e, ok := c.inner.(driver.ExecerContext); ok {
		return e.ExecContext(ctx, query, args)
	}
	if e, ok := c.inner.(driver.Execer); ok { //nolint:staticcheck // database/sql's fallback
		vals, err := values(args)
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return e.Exec(query, vals)
	}
	return nil, driver.ErrSkip
}

// innerQuery runs query on the inner connection; see innerExec.
func (c *conn) innerQuery(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if q, ok := c.inner.(driver.QueryerContext); ok {
		return q.QueryContext(ctx, query, args)
	}
	if q, ok := c.inner.(driver.Queryer); ok { //nolint:staticcheck // database/sql's fallback
		vals, err := values(args)
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return q.Query(query, vals)
	}
	return nil, driver.ErrSkip
}

// execDirect runs query on the inner connection and, where the inner
// connection answers driver.ErrSkip (go-sql-driver/mysql with arguments
// and without interpolateParams), as a prepared statement, as database/sql
// would.
func (c *conn) execDirect(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	res, err := c.innerExec(ctx, query, args)
	if !errors.Is(err, driver.ErrSkip) {
		return res, err
	}
	si, err := c.innerPrepare(ctx, query)
	if err != nil {
		return nil, err
	}
	defer si.Close()
	return stmtExec(ctx, si, args)
}

// queryDirect is execDirect for queries. Rows of a statement it had to
// prepare are read into memory, so that the statement can be closed.
func (c *conn) queryDirect(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := c.innerQuery(ctx, query, args)
	if !errors.Is(err, driver.ErrSkip) {
		return rows, err
	}
	si, err := c.innerPrepare(ctx, query)
	if err != nil {
		return nil, err
	}
	defer si.Close()
	rows, err = stmtQuery(ctx, si, args)
	if err != nil {
		return nil, err
	}
	return bufferRows(rows)
}

// values converts named arguments for the deprecated interfaces, refusing
// names as database/sql does.
func values(args []driver.NamedValue) ([]driver.Value, error) {
	out := make([]driver.Value, len(args))
	for i, a := range args {
		if a.Name != "" {
			return nil, errors.New("sql: driver does not support the use of Named Parameters")
		}
		out[i] = a.Value
	}
	return out, nil
}

// named converts plain arguments to positional named arguments.
func named(args []driver.Value) []driver.NamedValue {
	out := make([]driver.NamedValue, len(args))
	for i, a := range args {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	return out
}

// rollsBackOnTimeout reports whether the server rolls a whole transaction
// back on a lock-wait timeout (innodb_rollback_on_timeout), reading it
// once per Connector. If it cannot be read it answers true: aborting a
// transaction that is still whole costs a retry, continuing one that is
// gone would run its later statements without undo.
func (c *conn) rollsBackOnTimeout() bool {
	switch c.c.rollbackOnTimeout.Load() {
	case 1:
		return false
	case 2:
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.c.cfg.commitTimeout)
	defer cancel()
	on, err := mysqldialect.RollsBackOnTimeout(ctx, c.inner)
	if err != nil {
		return true
	}
	if on {
		c.c.rollbackOnTimeout.Store(2)
	} else {
		c.c.rollbackOnTimeout.Store(1)
	}
	return on
}
