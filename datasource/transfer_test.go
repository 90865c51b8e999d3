package datasource

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/tm"
)

// transfer moves amount from account 1 in src to account 1 in dst, each
// in a local transaction of its own database.
func transfer(ctx context.Context, src, dst *sql.DB, amount int) error {
	for _, step := range []struct {
		db    *sql.DB
		delta int
	}{{src, -amount}, {dst, amount}} {
		tx, err := step.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance + ? WHERE id = ?", step.delta, 1); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

func TestTransferTwoDatabases(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	a := e.newDB(t, nil)
	b := e.newDB(t, nil)
	a.accounts(1)
	b.accounts(1)
	if a.resource == b.resource {
		t.Fatalf("resource ids equal: %s", a.resource)
	}
	ctx := context.Background()

	tests := []struct {
		name         string
		fail         bool
		wantA, wantB int
		wantStatus   xactpb.GlobalStatus
	}{
		{"commit", false, 70, 130, xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED},
		{"rollback", true, 70, 130, xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var xid string
			err := e.tm.Do(ctx, tm.Options{Name: "transfer", Timeout: 10 * time.Second}, func(ctx context.Context) error {
				xid = xidOf(t, ctx)
				if err := transfer(ctx, a.db, b.db, 30); err != nil {
					return err
				}
				_, branches := e.global(xid)
				if len(branches) != 2 || branches[0].GetResourceId() != a.resource || branches[1].GetResourceId() != b.resource {
					t.Errorf("branches = %v, want one on %s and one on %s", branches, a.resource, b.resource)
				}
				if got, want := branches[0].GetLockKeys(), []string{"account:1"}; !reflect.DeepEqual(got, want) {
					t.Errorf("lock keys = %q, want %q", got, want)
				}
				if tt.fail {
					return errRollback
				}
				return nil
			})
			if tt.fail != errors.Is(err, errRollback) || !tt.fail && err != nil {
				t.Fatalf("Do = %v, want fail=%v", err, tt.fail)
			}
			g := e.settled(xid)
			if got := g.GetStatus(); got != tt.wantStatus {
				t.Errorf("status = %v, want %v", got, tt.wantStatus)
			}
			if got, want := a.balance(1), tt.wantA; got != want {
				t.Errorf("balance a = %d, want %d", got, want)
			}
			if got, want := b.balance(1), tt.wantB; got != want {
				t.Errorf("balance b = %d, want %d", got, want)
			}
			for _, d := range []*database{a, b} {
				eventually(t, func() error {
					if n, m := d.undoLogs(); n != 0 || m != 0 {
						return errors.New("undo logs left")
					}
					return nil
				})
			}
		})
	}
}
