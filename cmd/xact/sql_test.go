package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/xact-io/xact/internal/mysqltest"
	"github.com/xact-io/xact/undo"
)

func TestMain(m *testing.M) { mysqltest.Main(m) }

// TestSQLUndoLog: `xact sql undo-log` prints exactly undo.LogTableDDL
// with a terminating ";" and newline, and that output, run on MariaDB,
// creates undo_log with the primary key (xid, branch_id) and no other
// unique key.
func TestSQLUndoLog(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"sql", "undo-log"}, &stdout, &stderr); code != 0 {
		t.Fatalf("xact sql undo-log = %d, stderr %q", code, stderr.String())
	}
	if got, want := stdout.String(), undo.LogTableDDL+";\n"; got != want {
		t.Fatalf("xact sql undo-log printed\n%s\nwant\n%s", got, want)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr = %q, want nothing", stderr.String())
	}

	db := mysqltest.NewDB(t)
	if _, err := db.Exec(stdout.String()); err != nil {
		t.Fatalf("running the printed DDL: %v", err)
	}
	// Printed twice (a second piped run), it is harmless.
	if _, err := db.Exec(stdout.String()); err != nil {
		t.Fatalf("running the printed DDL again: %v", err)
	}
	rows, err := db.Query(`SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND NON_UNIQUE = 0
		ORDER BY INDEX_NAME, SEQ_IN_INDEX`, undo.LogTable)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var unique []string
	for rows.Next() {
		var index, col string
		if err := rows.Scan(&index, &col); err != nil {
			t.Fatal(err)
		}
		unique = append(unique, index+"."+col)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(unique, " "), "PRIMARY.xid PRIMARY.branch_id"; got != want {
		t.Errorf("unique keys of %s = %q, want %q", undo.LogTable, got, want)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = 'id'", undo.LogTable).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%s has a surrogate id column", undo.LogTable)
	}
}
