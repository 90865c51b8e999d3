package mysqldialect

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xact-io/xact/undo"
)

func TestUndoDirty(t *testing.T) {
	tests := []struct {
		name   string
		stmt   stmt
		meddle string // what someone else does after the branch committed
		key    string
	}{
		{"updated row changed again", q("UPDATE acct SET bal = 0 WHERE id = 1"), "UPDATE acct SET bal = 5 WHERE id = 1", "acct:1"},
		{"updated row deleted", q("UPDATE acct SET bal = 0 WHERE id = 1"), "DELETE FROM acct WHERE id = 1", "acct:1"},
		{"inserted row changed", q("INSERT INTO acct (id, name, bal) VALUES (9, 'z', 1)"), "UPDATE acct SET name = 'Z' WHERE id = 9", "acct:9"},
		{"deleted key reused", q("DELETE FROM acct WHERE id = 2"), "INSERT INTO acct VALUES (2, 'bob2', 1)", "acct:2"},
		{"case-only change is a change", q("UPDATE acct SET bal = 0 WHERE id = 1"), "UPDATE acct SET name = 'ANN' WHERE id = 1", "acct:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.exec(strings.Split(baseSchema, ";\n")...)
			enc, keys, err := e.branch(e.db, q("UPDATE item SET qty = 0"), tt.stmt)
			if err != nil {
				t.Fatal(err)
			}
			e.exec(tt.meddle)
			sum := e.checksum("acct", "item")
			err = e.rollback(e.db, enc, keys)
			var de *undo.DirtyError
			if !errors.As(err, &de) || !errors.Is(err, undo.ErrDirty) {
				t.Fatalf("rollback = %v, want an *undo.DirtyError", err)
			}
			if de.Key != tt.key {
				t.Errorf("dirty key = %q, want %q", de.Key, tt.key)
			}
			// The item update, replayed first... in reverse order it comes
			// last, so the failed local transaction left everything as is.
			if got := e.checksum("acct", "item"); got != sum {
				t.Errorf("a failed rollback changed data: %s, want %s", got, sum)
			}
		})
	}
}

// TestUndoIsRepeatable: rows already back in their before state are
// skipped, so replaying a log whose records touch distinct rows twice is
// harmless. (A log whose records touch one row several times is replayed
// once: the RM deletes the log in the compensating transaction.)
func TestUndoIsRepeatable(t *testing.T) {
	e := newEnv(t)
	e.exec(strings.Split(baseSchema, ";\n")...)
	sum0 := e.checksum("acct", "item")
	enc, keys, err := e.branch(e.db,
		q("UPDATE acct SET bal = bal + 1"),
		q("DELETE FROM item WHERE ord = 1"),
		q("INSERT INTO item VALUES (7, 7, 7)"),
	)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := e.rollback(e.db, enc, keys); err != nil {
			t.Fatalf("rollback %d: %v", i+1, err)
		}
		if got := e.checksum("acct", "item"); got != sum0 {
			t.Errorf("after rollback %d: %s, want %s", i+1, got, sum0)
		}
	}
}

func TestUndoChecksLockKeys(t *testing.T) {
	e := newEnv(t)
	e.exec(strings.Split(baseSchema, ";\n")...)
	enc, keys, err := e.branch(e.db, q("UPDATE acct SET bal = 0 WHERE id IN (1, 2)"))
	if err != nil {
		t.Fatal(err)
	}
	sum := e.checksum("acct")
	err = e.rollback(e.db, enc, keys[:1])
	if !errors.Is(err, ErrOutsideLocks) {
		t.Fatalf("rollback with a missing lock key = %v, want ErrOutsideLocks", err)
	}
	if got := e.checksum("acct"); got != sum {
		t.Errorf("refused rollback changed data")
	}
}

func TestUndoChecksSchema(t *testing.T) {
	tests := []struct {
		name string
		ddl  string
	}{
		{"column dropped", "ALTER TABLE acct DROP COLUMN bal"},
		{"column type changed", "ALTER TABLE acct MODIFY bal VARCHAR(20) NOT NULL"},
		{"table dropped", "DROP TABLE acct"},
		{"primary key changed", "ALTER TABLE acct DROP PRIMARY KEY, MODIFY id BIGINT NOT NULL, ADD PRIMARY KEY (name)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.exec(strings.Split(baseSchema, ";\n")...)
			enc, keys, err := e.branch(e.db, q("UPDATE acct SET bal = 0 WHERE id = 1"))
			if err != nil {
				t.Fatal(err)
			}
			e.exec(tt.ddl)
			if err := e.rollback(e.db, enc, keys); !errors.Is(err, undo.ErrSchema) {
				t.Fatalf("rollback = %v, want undo.ErrSchema", err)
			}
		})
	}
}

// TestImageMismatch: under READ COMMITTED a row inserted between the
// before image and the statement is deleted without an image; the plan
// notices from the affected-row count.
func TestImageMismatch(t *testing.T) {
	e := newEnv(t)
	e.exec(strings.Split(baseSchema, ";\n")...)
	ctx := context.Background()
	c, err := e.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Raw(func(dc any) error {
		conn := dc.(driver.Conn)
		txn, err := conn.(driver.ConnBeginTx).BeginTx(ctx, driver.TxOptions{Isolation: driver.IsolationLevel(sql.LevelReadCommitted)})
		if err != nil {
			return err
		}
		defer txn.Rollback()
		const del = "DELETE FROM acct WHERE bal >= 20"
		p, err := e.d.Prepare(ctx, conn, del, nil)
		if err != nil {
			return err
		}
		if err := p.Before(ctx, conn); err != nil {
			return err
		}
		if _, err := e.db.Exec("INSERT INTO acct VALUES (10, 'late', 99)"); err != nil {
			return err
		}
		res, err := execute(ctx, conn, del, nil)
		if err != nil {
			return err
		}
		if err := p.After(ctx, conn, res); !errors.Is(err, ErrImageMismatch) {
			t.Errorf("After = %v, want ErrImageMismatch", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPlanMisuse(t *testing.T) {
	e := newEnv(t)
	e.exec(strings.Split(baseSchema, ";\n")...)
	err := tx(t, e.db, func(ctx context.Context, conn driver.Conn) error {
		p, err := e.d.Prepare(ctx, conn, "UPDATE acct SET bal = 1", nil)
		if err != nil {
			return err
		}
		if err := p.After(ctx, conn, nil); err == nil {
			t.Error("After before Before = nil error")
		}
		if err := p.Before(ctx, conn); err != nil {
			return err
		}
		if err := p.Before(ctx, conn); err == nil {
			t.Error("Before twice = nil error")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestUndoReplayShapeAge: a rollback reuses a table shape read at most
// WithReplayMetadataAge ago and reads it again afterwards. A schema
// change inside that window still fails the rollback (the compensating
// statements name the columns) and changes nothing; after it, the check
// names the schema change.
func TestUndoReplayShapeAge(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	e.d.now = func() time.Time { return now }
	e.exec(strings.Split(baseSchema, ";\n")...)
	enc, keys, err := e.branch(e.db, q("UPDATE acct SET bal = bal + 1 WHERE id = 1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rollback(e.db, enc, keys); err != nil {
		t.Fatalf("first rollback: %v", err)
	}
	enc, keys, err = e.branch(e.db, q("UPDATE acct SET bal = bal + 1 WHERE id = 1"))
	if err != nil {
		t.Fatal(err)
	}
	e.exec("ALTER TABLE acct DROP COLUMN bal")
	sum := e.checksum("acct")
	if err := e.rollback(e.db, enc, keys); err == nil {
		t.Fatal("rollback inside the window after DROP COLUMN = nil, want an error")
	}
	if got := e.checksum("acct"); got != sum {
		t.Errorf("failed rollback changed data: %s, want %s", got, sum)
	}
	now = now.Add(DefaultReplayMetadataAge)
	if err := e.rollback(e.db, enc, keys); !errors.Is(err, undo.ErrSchema) {
		t.Fatalf("rollback after the window = %v, want undo.ErrSchema", err)
	}
}
