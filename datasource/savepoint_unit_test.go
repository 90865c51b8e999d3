package datasource

import (
	"context"
	"database/sql/driver"
	"errors"
	"reflect"
	"strings"
	"testing"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/xact-io/xact/datasource/mysqldialect"
	"github.com/xact-io/xact/datasource/mysqldialect/errno"
	"github.com/xact-io/xact/undo"
)

// marksHarness drives txState.savepoint with a scripted database answer,
// so that the marks can be checked after every step.
type marksHarness struct {
	t  *testing.T
	ts *txState
	// ran counts the statements handed to the "database".
	ran int
}

func newMarksHarness(t *testing.T, s scope) *marksHarness {
	return &marksHarness{t: t, ts: &txState{ctx: context.Background(), scope: s}}
}

// write keeps what a statement changing row key leaves: one record, and
// its lock key.
func (h *marksHarness) write(key string) {
	h.ts.keep([]undo.Record{{Table: key}}, []string{key})
}

// sp runs a savepoint statement; dbErr is the database's answer.
func (h *marksHarness) sp(query string, dbErr error) error {
	h.t.Helper()
	st, err := mysqldialect.Parse(query)
	if err != nil || st.Kind() != mysqldialect.KindSavepoint {
		h.t.Fatalf("Parse(%q) = %v, %v", query, st, err)
	}
	_, err = h.ts.exec(context.Background(), st, nil, func(context.Context) (driver.Result, error) {
		h.ran++
		if dbErr != nil {
			return nil, dbErr
		}
		return driver.ResultNoRows, nil
	})
	return err
}

// ok runs a savepoint statement the database accepts.
func (h *marksHarness) ok(query string) {
	h.t.Helper()
	if err := h.sp(query, nil); err != nil {
		h.t.Fatalf("%s: %v", query, err)
	}
}

// check compares the records (by table), keys and marks (by key).
func (h *marksHarness) check(step string, records, keys, marks []string) {
	h.t.Helper()
	var gotRecords, gotMarks []string
	for _, r := range h.ts.records {
		gotRecords = append(gotRecords, r.Table)
	}
	for _, m := range h.ts.marks {
		gotMarks = append(gotMarks, m.key)
	}
	gotKeys := h.ts.keys
	if !reflect.DeepEqual(gotRecords, records) || !reflect.DeepEqual(gotKeys, keys) || !reflect.DeepEqual(gotMarks, marks) {
		h.t.Errorf("after %s: records %q keys %q marks %q, want records %q keys %q marks %q",
			step, gotRecords, gotKeys, gotMarks, records, keys, marks)
	}
	if len(h.ts.seen) != len(h.ts.keys) {
		h.t.Errorf("after %s: %d keys seen, %d kept", step, len(h.ts.seen), len(h.ts.keys))
	}
	for _, k := range h.ts.keys {
		if _, ok := h.ts.seen[k]; !ok {
			h.t.Errorf("after %s: key %s kept but not seen", step, k)
		}
	}
}

func errNoSavepoint(name string) error {
	return &gomysql.MySQLError{Number: errno.SPDoesNotExist, SQLState: [5]byte{'4', '2', '0', '0', '0'}, Message: "SAVEPOINT " + name + " does not exist"}
}

// TestSavepointMarks follows MySQL's savepoint list: SAVEPOINT replaces
// one of the same name (compared case-insensitively), ROLLBACK TO keeps
// the savepoint and removes later ones, RELEASE removes it and later ones;
// ROLLBACK TO drops exactly the records and the lock keys taken after the
// savepoint; the database's refusal changes nothing.
func TestSavepointMarks(t *testing.T) {
	t.Run("branch", func(t *testing.T) {
		h := newMarksHarness(t, scope{xid: "x"})

		err := h.sp("ROLLBACK TO nosuch", errNoSavepoint("nosuch"))
		var me *gomysql.MySQLError
		if !errors.As(err, &me) || me.Number != errno.SPDoesNotExist || errors.Is(err, ErrAborted) {
			t.Fatalf("ROLLBACK TO an unknown name = %v, want the database's error 1305 as it is", err)
		}
		h.check("unknown name", nil, nil, nil)

		h.write("k1")
		h.ok("SAVEPOINT a")
		h.write("k2")
		h.write("k1") // a second record of a row the transaction already holds
		h.ok("SAVEPOINT b")
		h.write("k3")
		h.ok("SAVEPOINT `A`") // replaces a, now after b
		h.write("k4")
		h.check("writes", []string{"k1", "k2", "k1", "k3", "k4"}, []string{"k1", "k2", "k3", "k4"}, []string{"b", "a"})

		h.ok("ROLLBACK TO SAVEPOINT B")
		h.check("ROLLBACK TO b", []string{"k1", "k2", "k1"}, []string{"k1", "k2"}, []string{"b"})

		if err := h.sp("ROLLBACK TO a", errNoSavepoint("a")); err == nil {
			t.Fatal("ROLLBACK TO a removed savepoint = nil error")
		}
		h.check("ROLLBACK TO a (refused)", []string{"k1", "k2", "k1"}, []string{"k1", "k2"}, []string{"b"})

		h.ok("SAVEPOINT c")
		h.write("k5")
		h.write("k3") // dropped with b's rollback: a new key again
		h.ok("SAVEPOINT d")
		h.ok("RELEASE SAVEPOINT c") // c and d
		h.check("RELEASE c", []string{"k1", "k2", "k1", "k5", "k3"}, []string{"k1", "k2", "k5", "k3"}, []string{"b"})

		h.ok("ROLLBACK WORK TO b") // everything after b again
		h.check("ROLLBACK TO b again", []string{"k1", "k2", "k1"}, []string{"k1", "k2"}, []string{"b"})

		h.ok("RELEASE SAVEPOINT b")
		h.check("RELEASE b", []string{"k1", "k2", "k1"}, []string{"k1", "k2"}, nil)
		if h.ts.aborted != nil {
			t.Fatalf("aborted: %v", h.ts.aborted)
		}
	})

	t.Run("global lock", func(t *testing.T) {
		h := newMarksHarness(t, scope{globalLock: true})
		h.write("k1")
		h.ok("SAVEPOINT s")
		h.write("k2")
		h.ok("ROLLBACK TO s")
		h.check("ROLLBACK TO s", nil, []string{"k1"}, []string{"s"})
	})

	t.Run("database lost a savepoint", func(t *testing.T) {
		h := newMarksHarness(t, scope{xid: "x"})
		h.ok("SAVEPOINT s")
		h.write("k1")
		dbErr := errNoSavepoint("s")
		if err := h.sp("ROLLBACK TO s", dbErr); !errors.Is(err, dbErr) {
			t.Fatalf("ROLLBACK TO s = %v, want the database's error", err)
		}
		if !errors.Is(h.ts.aborted, dbErr) {
			t.Fatalf("aborted = %v, want the transaction aborted", h.ts.aborted)
		}
		ran := h.ran
		if err := h.sp("SAVEPOINT t", nil); !errors.Is(err, ErrAborted) {
			t.Errorf("SAVEPOINT in an aborted transaction = %v, want %v", err, ErrAborted)
		}
		if h.ran != ran {
			t.Error("a savepoint statement ran in an aborted transaction")
		}
	})

	t.Run("database knew a savepoint the wrapper did not", func(t *testing.T) {
		h := newMarksHarness(t, scope{xid: "x"})
		h.write("k1")
		err := h.sp("ROLLBACK TO ghost", nil)
		if !errors.Is(err, ErrAborted) || !strings.Contains(err.Error(), "ghost") {
			t.Errorf("ROLLBACK TO a savepoint accepted by the database only = %v, want %v naming it", err, ErrAborted)
		}
	})

	t.Run("other database errors change nothing", func(t *testing.T) {
		h := newMarksHarness(t, scope{xid: "x"})
		h.ok("SAVEPOINT s")
		h.write("k1")
		dbErr := &gomysql.MySQLError{Number: 1064, Message: "syntax"}
		if err := h.sp("ROLLBACK TO s", dbErr); !errors.Is(err, dbErr) {
			t.Fatalf("ROLLBACK TO s = %v, want the database's error", err)
		}
		h.check("failed ROLLBACK TO", []string{"k1"}, []string{"k1"}, []string{"s"})
		if h.ts.aborted != nil {
			t.Errorf("aborted = %v", h.ts.aborted)
		}
	})
}
