package mysqldialect

import (
	"context"
	"database/sql/driver"
	"testing"
)

func TestRollsBackOnTimeout(t *testing.T) {
	e := newEnv(t)
	var want bool
	if err := e.db.QueryRow("SELECT @@innodb_rollback_on_timeout").Scan(&want); err != nil {
		t.Fatal(err)
	}
	err := tx(t, e.db, func(ctx context.Context, conn driver.Conn) error {
		got, err := RollsBackOnTimeout(ctx, conn)
		if err != nil || got != want {
			t.Errorf("RollsBackOnTimeout = %v, %v; want %v (the server's setting)", got, err, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
