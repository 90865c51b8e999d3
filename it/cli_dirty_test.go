package it

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xact-io/xact/datasource"
	"github.com/xact-io/xact/internal/mysqltest"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/tm"
	"github.com/xact-io/xact/undo"
)

var parkedLine = regexp.MustCompile(`(?m)^Parked:\s+true$`)

// TestCLIShowsDirtyRollback: an AT branch against a real `xact server`,
// its row changed by a plain UPDATE outside any global transaction, the
// global rolled back. The rollback finds the row dirty and the branch is
// parked; `xact tx show XID` names the reason, the branch's status and
// the row's lock key, which the parked branch keeps.
func TestCLIShowsDirtyRollback(t *testing.T) {
	proc := startTC(t, t.TempDir(), "127.0.0.1:0")
	conn := dial(t, proc.addr)
	rmc := rm.New(conn, rm.WithClientID("it-dirty"), rm.WithBackoff(20*time.Millisecond, 200*time.Millisecond))
	t.Cleanup(func() { rmc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rmc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := mysqltest.Config(t)
	raw := mysqltest.Open(t, cfg)
	for _, s := range []string{
		undo.LogTableDDL,
		"CREATE TABLE account (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)",
		"INSERT INTO account VALUES (1, 100), (2, 100)",
	} {
		if _, err := raw.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	const resource = "it-dirty-db"
	db, err := datasource.Open("mysql", cfg.FormatDSN(), datasource.WithRM(rmc), datasource.WithResourceID(resource))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	var xid string
	errBack := errors.New("roll back")
	err = tm.New(conn).Do(context.Background(), tm.Options{Name: "it-dirty", Timeout: time.Minute}, func(ctx context.Context) error {
		xid, _ = tm.XID(ctx)
		if _, err := db.ExecContext(ctx, "UPDATE account SET balance = balance - 30 WHERE id = 1"); err != nil {
			return err
		}
		// Someone outside any global transaction changes the row.
		if _, err := raw.Exec("UPDATE account SET balance = 500 WHERE id = 1"); err != nil {
			return err
		}
		return errBack
	})
	if !errors.Is(err, errBack) {
		t.Fatalf("Do = %v", err)
	}

	srv := "--server=" + proc.addr
	var out string
	if !waitFor(30*time.Second, func() bool {
		out, err = xactCLI(t, "tx", "show", xid, srv)
		return err == nil && parkedLine.MatchString(out)
	}) {
		t.Fatalf("not parked in time; tx show says:\n%s (err %v)", out, err)
	}
	for _, want := range []string{
		xid,
		"ROLLBACK_FAILED",                       // the global's status
		"changed after the branch wrote it",     // the parked reason
		"PHASE_TWO_ROLLBACK_FAILED_UNRETRYABLE", // the branch's status
		resource + " account:1",                 // the lock it keeps
	} {
		if !strings.Contains(out, want) {
			t.Errorf("tx show lacks %q:\n%s", want, out)
		}
	}
	var balance int
	if err := raw.QueryRow("SELECT balance FROM account WHERE id = 1").Scan(&balance); err != nil {
		t.Fatal(err)
	}
	if balance != 500 {
		t.Errorf("balance = %d, want 500 (the other writer's)", balance)
	}
}
