package mysqldialect

import (
	"errors"
	"testing"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/xact-io/xact/undo"
)

// TestUndoLogTable runs the undo_log DDL and SQL of package undo on
// MariaDB, including the global-finished marker that makes a late phase-one
// commit fail (I8).
func TestUndoLogTable(t *testing.T) {
	e := newEnv(t)
	e.exec(undo.LogTableDDL, undo.LogTableDDL) // IF NOT EXISTS: repeatable
	blob, err := undo.Encode(&undo.Log{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec(undo.InsertLogSQL, "xid-1", int64(7), undo.LogContext, blob, undo.StatusNormal); err != nil {
		t.Fatal(err)
	}
	// A rollback that found no log inserts the marker; the branch's own
	// insert afterwards hits the unique key.
	if _, err := e.db.Exec(undo.InsertLogSQL, "xid-1", int64(8), undo.LogContext, []byte{}, undo.StatusGlobalFinished); err != nil {
		t.Fatal(err)
	}
	_, err = e.db.Exec(undo.InsertLogSQL, "xid-1", int64(8), undo.LogContext, blob, undo.StatusNormal)
	var me *gomysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1062 {
		t.Fatalf("late phase-one insert = %v, want duplicate key error 1062", err)
	}
	tx, err := e.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var ctxt string
	var info []byte
	var status int
	if err := tx.QueryRow(undo.SelectLogSQL, "xid-1", int64(7)).Scan(&ctxt, &info, &status); err != nil {
		t.Fatal(err)
	}
	if _, err := undo.Decode(info); err != nil || ctxt != undo.LogContext || status != undo.StatusNormal {
		t.Errorf("read back context %q status %d decode %v", ctxt, status, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	res, err := e.db.Exec(undo.DeleteLogsSQL(2), "xid-1", int64(7), "xid-1", int64(8))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 2 {
		t.Errorf("DeleteLogsSQL deleted %d rows, want 2", n)
	}
	if _, err := e.db.Exec(undo.DeleteOldLogsSQL, "2999-01-01", 100); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec(undo.DeleteLogSQL, "xid-1", int64(7)); err != nil {
		t.Fatal(err)
	}
}
