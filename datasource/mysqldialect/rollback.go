package mysqldialect

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/xact-io/xact/undo"
)

// ErrOutsideLocks reports an undo record that would touch a row whose key
// the branch never registered: the log does not belong to the branch, or
// it was tampered with. Replaying it could overwrite rows another global
// transaction owns.
var ErrOutsideLocks = errors.New("mysql: undo record touches rows outside the branch's lock keys")

// Undo compensates log on conn: records in reverse order, each after a
// dirty check of the rows it touches (read FOR UPDATE). Run it inside a
// local transaction on a connection the caller owns, and commit only if
// it returns nil; on any error roll back, and nothing is changed.
//
// Before touching anything it checks that every row of the log has a key
// in lockKeys (the branch's registered lock keys; ErrOutsideLocks) and
// that every table and column of the log exists in the live schema, as
// read at most WithReplayMetadataAge ago (undo.ErrSchema). A row that someone else changed since the
// branch wrote it fails with an *undo.DirtyError (undo.ErrDirty): that
// branch cannot be rolled back automatically and must be parked for an
// operator. A row already back in the state its record replaced is
// skipped; still, run Undo and the deletion of the branch's undo_log row
// in the same local transaction, so that a committed rollback is never
// replayed (a row that several records touched is only recognised as
// compensated by its last record).
//
// When the log holds TIMESTAMP columns, Undo sets the session time zone
// to UTC for the replay (its images are UTC) and restores it before
// returning.
func (d *Dialect) Undo(ctx context.Context, conn driver.Conn, log *undo.Log, lockKeys []string) (err error) {
	if err := log.Validate(undo.DefaultLimits); err != nil {
		return err
	}
	allowed := make(map[string]bool, len(lockKeys))
	for _, k := range lockKeys {
		allowed[k] = true
	}
	for i := range log.Records {
		keys, err := log.Records[i].LockKeys()
		if err != nil {
			return err
		}
		for _, k := range keys {
			if !allowed[k] {
				return fmt.Errorf("%w: %s", ErrOutsideLocks, k)
			}
		}
	}

	// The live schema of every table, and each record's columns in it.
	tables := make(map[string]*Table)
	needUTC := false
	for i := range log.Records {
		r := &log.Records[i]
		t, ok := tables[r.Table]
		if !ok {
			t, err = d.replayTable(ctx, conn, r.Table)
			if errors.Is(err, ErrTableNotFound) || errors.Is(err, ErrUnsupported) {
				// Gone, or now a view or a versioned table.
				return fmt.Errorf("%w: %v", undo.ErrSchema, err)
			}
			if err != nil {
				return err
			}
			tables[r.Table] = t
		}
		cols, err := recordColumns(t, r)
		if err != nil {
			return err
		}
		for _, c := range cols {
			if c.class == classTimestamp {
				needUTC = true
			}
		}
	}

	if needUTC {
		rows, err := queryRows(ctx, conn, "SELECT @@SESSION.time_zone", nil)
		if err != nil {
			return fmt.Errorf("mysql: read session time zone: %w", err)
		}
		if len(rows) != 1 || len(rows[0]) != 1 {
			return errors.New("mysql: read session time zone: no result")
		}
		saved := str(rows[0][0])
		if _, err := execute(ctx, conn, "SET SESSION time_zone = '+00:00'", nil); err != nil {
			return fmt.Errorf("mysql: set session time zone: %w", err)
		}
		defer func() {
			if _, rerr := execute(context.WithoutCancel(ctx), conn, "SET SESSION time_zone = ?", []any{saved}); rerr != nil && err == nil {
				// The pooled connection would keep UTC: make the caller
				// discard it.
				err = fmt.Errorf("mysql: restore session time zone %q: %w: %w", saved, rerr, driver.ErrBadConn)
			}
		}()
	}

	for i := len(log.Records) - 1; i >= 0; i-- {
		r := &log.Records[i]
		if err := d.undoRecord(ctx, conn, tables[r.Table], r); err != nil {
			return fmt.Errorf("record %d (%s on %s): %w", i, r.Op, r.Table, err)
		}
	}
	return nil
}

// recordColumns maps the record's columns onto the live table.
func recordColumns(t *Table, r *undo.Record) ([]*Column, error) {
	names := r.Columns()
	cols := make([]*Column, len(names))
	for i, n := range names {
		c, ok := t.Column(n)
		if !ok {
			return nil, fmt.Errorf("%w: column %s.%s no longer exists", undo.ErrSchema, r.Table, n)
		}
		if c.class == 0 {
			return nil, fmt.Errorf("%w: column %s.%s has type %s now", undo.ErrSchema, r.Table, n, c.ColumnType)
		}
		cols[i] = c
	}
	return cols, nil
}

func (d *Dialect) undoRecord(ctx context.Context, conn driver.Conn, t *Table, r *undo.Record) error {
	cols, err := recordColumns(t, r)
	if err != nil {
		return err
	}
	if len(t.PrimaryKey) != len(r.PrimaryKey) {
		return fmt.Errorf("%w: primary key of %s changed", undo.ErrSchema, t.Name)
	}
	names := r.Columns()
	for _, rows := range [][]undo.Row{r.Before, r.After} {
		for _, row := range rows {
			for j, f := range row {
				if !cols[j].accepts(f.Value.Kind()) {
					return fmt.Errorf("%w: column %s.%s is %s now, the image holds a %s value", undo.ErrSchema, t.Name, cols[j].Name, cols[j].ColumnType, f.Value.Kind())
				}
			}
		}
	}
	keyPos := make([]int, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		keyPos[i] = -1
		for j, n := range names {
			if n == r.PrimaryKey[i] && cols[j].Name == k {
				keyPos[i] = j
			}
		}
		if keyPos[i] < 0 {
			return fmt.Errorf("%w: primary key of %s changed", undo.ErrSchema, t.Name)
		}
	}
	pairs, err := r.Pairs()
	if err != nil {
		return err
	}
	keys := make([]undo.Row, len(pairs))
	for i, p := range pairs {
		if p.After != nil {
			keys[i] = p.After
		} else {
			keys[i] = p.Before
		}
	}
	current, err := rowsByKey(ctx, conn, t, cols, keyPos, keys, true)
	if err != nil {
		return fmt.Errorf("mysql: read current rows: %w", err)
	}
	for _, row := range current {
		// Compare under the record's names (the live ones may differ in
		// case).
		for j := range row {
			row[j].Name = names[j]
		}
	}
	todo, err := r.Check(current)
	if err != nil {
		return err
	}
	stmts, err := r.Compensation(t.Undo(), todo)
	if err != nil {
		return err
	}
	for _, s := range stmts {
		res, err := execute(ctx, conn, s.SQL, s.Args)
		if err != nil {
			return fmt.Errorf("mysql: compensate: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("mysql: compensate: %w", err)
		}
		if n != s.Rows {
			return fmt.Errorf("%w: compensating statement on %s affected %d rows, want %d", undo.ErrDirty, t.Name, n, s.Rows)
		}
	}
	return nil
}
