package mysqldialect

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
)

// The helpers here run the dialect's own statements on the caller's driver
// connection, inside the caller's local transaction. They take the paths
// database/sql would: QueryerContext/ExecerContext, and a prepared
// statement when the driver answers driver.ErrSkip (go-sql-driver does for
// arguments without interpolateParams).

func named(args []any) []driver.NamedValue {
	nv := make([]driver.NamedValue, len(args))
	for i, a := range args {
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	return nv
}

// queryRows runs q and returns all its rows, with []byte values copied
// (drivers reuse their buffers between rows).
func queryRows(ctx context.Context, conn driver.Conn, q string, args []any) ([][]driver.Value, error) {
	nv := named(args)
	var rows driver.Rows
	var err error = driver.ErrSkip
	if qc, ok := conn.(driver.QueryerContext); ok {
		rows, err = qc.QueryContext(ctx, q, nv)
	}
	if errors.Is(err, driver.ErrSkip) {
		var st driver.Stmt
		st, err = prepare(ctx, conn, q)
		if err != nil {
			return nil, err
		}
		defer st.Close()
		if sq, ok := st.(driver.StmtQueryContext); ok {
			rows, err = sq.QueryContext(ctx, nv)
		} else {
			return nil, fmt.Errorf("mysql: driver statement %T cannot query with a context", st)
		}
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]driver.Value
	for {
		dest := make([]driver.Value, len(rows.Columns()))
		if err := rows.Next(dest); err != nil {
			if err == io.EOF {
				return out, nil
			}
			return nil, err
		}
		for i, v := range dest {
			if b, ok := v.([]byte); ok {
				dest[i] = append([]byte(nil), b...)
			}
		}
		out = append(out, dest)
	}
}

// execute runs q and returns its result.
func execute(ctx context.Context, conn driver.Conn, q string, args []any) (driver.Result, error) {
	nv := named(args)
	if ec, ok := conn.(driver.ExecerContext); ok {
		res, err := ec.ExecContext(ctx, q, nv)
		if !errors.Is(err, driver.ErrSkip) {
			return res, err
		}
	}
	st, err := prepare(ctx, conn, q)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	se, ok := st.(driver.StmtExecContext)
	if !ok {
		return nil, fmt.Errorf("mysql: driver statement %T cannot execute with a context", st)
	}
	return se.ExecContext(ctx, nv)
}

func prepare(ctx context.Context, conn driver.Conn, q string) (driver.Stmt, error) {
	if pc, ok := conn.(driver.ConnPrepareContext); ok {
		return pc.PrepareContext(ctx, q)
	}
	return conn.Prepare(q)
}
