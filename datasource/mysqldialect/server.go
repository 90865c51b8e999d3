package mysqldialect

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
)

// RollsBackOnTimeout reports whether the server behind conn rolls a whole
// transaction back on a lock-wait timeout (innodb_rollback_on_timeout), so
// that statements after ER_LOCK_WAIT_TIMEOUT (errno.LockWaitTimeout) would
// run outside it. The setting is fixed at server start: read it once.
func RollsBackOnTimeout(ctx context.Context, conn driver.Conn) (bool, error) {
	rows, err := queryRows(ctx, conn, "SELECT @@innodb_rollback_on_timeout", nil)
	if err != nil {
		return false, fmt.Errorf("mysql: read innodb_rollback_on_timeout: %w", err)
	}
	if len(rows) != 1 || len(rows[0]) != 1 {
		return false, errors.New("mysql: read innodb_rollback_on_timeout: no result")
	}
	return num(rows[0][0]) != 0, nil
}
