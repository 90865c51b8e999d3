package datasource

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/xact-io/xact/tm"
)

// TestDBPreparedInGlobal: a statement prepared on the *sql.DB outside any
// global transaction (its driver statement is prepared with a context
// that carries no XID) and executed later with a global transaction's
// context is captured as that global's branch (the autocommit path of the
// prepared statement), for every supported statement kind and both
// interpolateParams settings: after a commit the change is there and the
// undo logs are gone; after a rollback every table is exactly as before.
func TestDBPreparedInGlobal(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	for _, interp := range []bool{false, true} {
		t.Run(fmt.Sprintf("interpolateParams=%v", interp), func(t *testing.T) {
			d := e.newDB(t, []dbOption{interpolate(interp)})
			d.exec(schema...)
			for _, tc := range statementCases {
				t.Run(tc.name, func(t *testing.T) {
					d.exec(seed...)
					seeded := d.dumpAll()
					runPlain(t, d.raw, tc.sql, tc.args, tc.query)
					want := d.dumpAll()
					for _, fail := range []bool{false, true} {
						name := "commit"
						if fail {
							name = "rollback"
						}
						t.Run(name, func(t *testing.T) {
							d.exec(seed...)
							st, err := d.db.PrepareContext(context.Background(), tc.sql)
							if err != nil {
								t.Fatalf("prepare: %v", err)
							}
							defer st.Close()
							err = e.tm.Do(context.Background(), tm.Options{Name: tc.name, Timeout: 10 * time.Second}, func(ctx context.Context) error {
								if tc.query {
									if err := drain(st.QueryContext(ctx, tc.args...)); err != nil {
										return err
									}
								} else if _, err := st.ExecContext(ctx, tc.args...); err != nil {
									return err
								}
								if fail {
									return errRollback
								}
								return nil
							})
							if fail && !errors.Is(err, errRollback) || !fail && err != nil {
								t.Fatalf("Do = %v", err)
							}
							wantNow := want
							if fail {
								wantNow = seeded
							}
							if got := d.dumpAll(); !reflect.DeepEqual(got, wantNow) {
								t.Errorf("tables =\n%v\nwant\n%v", got, wantNow)
							}
							if n, m := d.undoLogs(); n != 0 || m != 0 {
								t.Errorf("undo_log has %d logs and %d markers, want none", n, m)
							}
						})
					}
				})
			}
		})
	}
}
