package datasource

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/xact-io/xact/datasource/mysqldialect/errno"
)

// The undo_log check finds a missing or wrong table when the application
// pings the data source, instead of at its first global commit, where the
// branch is already registered.

const (
	// probeUndoColumnsSQL names every column AT reads or writes: it fails
	// with 1146 (no table) or 1054 (a column missing), and reads no row.
	probeUndoColumnsSQL = "SELECT `xid`, `branch_id`, `context`, `rollback_info`, `log_status`, `log_created`, `log_modified` FROM `undo_log` WHERE 1 = 0"
	// probeUndoKeysSQL lists the unique indexes of undo_log with their
	// columns in order.
	probeUndoKeysSQL = "SELECT `INDEX_NAME`, IF(`SUB_PART` IS NULL, `COLUMN_NAME`, CONCAT(`COLUMN_NAME`, '(prefix)')) FROM `information_schema`.`STATISTICS` " +
		"WHERE `TABLE_SCHEMA` = DATABASE() AND `TABLE_NAME` = 'undo_log' AND `NON_UNIQUE` = 0 ORDER BY `INDEX_NAME`, `SEQ_IN_INDEX`"
)

// undoTableFix is the end of every ErrUndoLogTable message.
const undoTableFix = "create it with the DDL that `xact sql undo-log` prints (undo.LogTableDDL)"

// checkUndoTable checks, once per Connector, that the database has a
// usable undo_log table: every column AT uses, and a unique key on
// exactly (xid, branch_id), whole columns (a prefix key would make
// branches whose XIDs share the prefix collide), which makes a late
// phase-one insert fail after its branch was rolled back (I8). Column
// types are not checked.
func (c *conn) checkUndoTable(ctx context.Context) error {
	if c.c.undoTableOK.Load() {
		return nil
	}
	rows, err := c.queryDirect(ctx, probeUndoColumnsSQL, nil)
	if err != nil {
		switch errno.Of(err) {
		case errno.NoSuchTable, errno.BadField:
			return fmt.Errorf("%w on %s: %v; %s", ErrUndoLogTable, c.c.cfg.resource, err, undoTableFix)
		}
		return fmt.Errorf("datasource: check undo_log table: %w", err)
	}
	rows.Close()
	rows, err = c.queryDirect(ctx, probeUndoKeysSQL, nil)
	if err != nil {
		return fmt.Errorf("datasource: check undo_log keys: %w", err)
	}
	keys := map[string][]string{}
	var order []string
	dest := make([]driver.Value, 2)
	for {
		if err := rows.Next(dest); err != nil {
			rows.Close()
			if !errors.Is(err, io.EOF) {
				return fmt.Errorf("datasource: check undo_log keys: %w", err)
			}
			break
		}
		name, col := asString(dest[0]), strings.ToLower(asString(dest[1]))
		if _, ok := keys[name]; !ok {
			order = append(order, name)
		}
		keys[name] = append(keys[name], col)
	}
	for _, name := range order {
		cols := slices.Clone(keys[name])
		slices.Sort(cols)
		if slices.Equal(cols, []string{"branch_id", "xid"}) {
			c.c.undoTableOK.Store(true)
			return nil
		}
	}
	return fmt.Errorf("%w on %s: no unique key on exactly (xid, branch_id), which refuses a branch's late local commit after its rollback; %s",
		ErrUndoLogTable, c.c.cfg.resource, undoTableFix)
}
