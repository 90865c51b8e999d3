package datasource

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/xact-io/xact/internal/mysqltest"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/tm"
)

// TestTypeFidelityThroughWrapper: the type-fidelity rows written by
// UPDATE, DELETE and INSERT in global transactions through the wrapper
// (one branch of three statements, and three autocommit branches), on
// connections whose session time zone differs from the server's, with
// both interpolateParams settings (the interpolated one also with
// parseTime, a Loc and latin1), and rolled back by phase two on the same
// settings: the global ends ROLLBACKED, not parked, and every stored
// byte is as before (CHECKSUM TABLE and a HEX dump).
func TestTypeFidelityThroughWrapper(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	sides := []struct {
		name        string
		interpolate bool
		parseTime   bool
		loc         string
		timeZone    string
		charset     string
	}{
		{name: "binary protocol, utf8mb4, +05:30", timeZone: "+05:30"},
		{name: "interpolated, parseTime, latin1, -08:00", interpolate: true, parseTime: true, loc: "Asia/Tokyo", timeZone: "-08:00", charset: "latin1"},
	}
	stmts := []struct {
		sql  string
		args []any
	}{
		{mysqltest.TypesUpdate, []any{3}},
		{"DELETE FROM types WHERE id = ?", []any{4}},
		{"INSERT INTO types (id, u64, f, ts6, ts0, vc, bt) VALUES (?, ?, ?, ?, '2020-02-02 02:02:02', ?, ?)", []any{5, uint64(math.MaxUint64), 0.1, "2021-06-01 12:00:00.123456", "new", 3}},
	}
	for _, side := range sides {
		for _, path := range []string{"tx", "autocommit"} {
			t.Run(side.name+"/"+path, func(t *testing.T) {
				d := e.newDB(t, []dbOption{func(c *gomysql.Config) {
					c.InterpolateParams = side.interpolate
					c.ParseTime = side.parseTime
					if side.loc != "" {
						loc, err := time.LoadLocation(side.loc)
						if err != nil {
							t.Fatal(err)
						}
						c.Loc = loc
					}
					if c.Params == nil {
						c.Params = map[string]string{}
					}
					c.Params["time_zone"] = "'" + side.timeZone + "'"
					if side.charset != "" {
						if err := c.Apply(gomysql.Charset(side.charset, "")); err != nil {
							t.Fatal(err)
						}
					}
				}})
				// The test's eyes: a pool with the driver's defaults and the
				// server's time zone (d.raw has the side's settings).
				pc := gomysql.NewConfig()
				pc.User, pc.Passwd, pc.Net, pc.Addr, pc.DBName = d.cfg.User, d.cfg.Passwd, d.cfg.Net, d.cfg.Addr, d.cfg.DBName
				plain := mysqltest.Open(t, pc)
				for _, s := range append([]string{mysqltest.TypesSchema}, mysqltest.TypesRows...) {
					if _, err := plain.Exec(s); err != nil {
						t.Fatalf("%.60s: %v", s, err)
					}
				}
				var serverTZ, sessionTZ string
				if err := plain.QueryRow("SELECT @@GLOBAL.time_zone").Scan(&serverTZ); err != nil {
					t.Fatal(err)
				}
				if err := d.db.QueryRow("SELECT @@SESSION.time_zone").Scan(&sessionTZ); err != nil {
					t.Fatal(err)
				}
				if sessionTZ != side.timeZone || sessionTZ == serverTZ {
					t.Fatalf("session time_zone = %q (server %q), want %q", sessionTZ, serverTZ, side.timeZone)
				}
				sum0, dump0 := d.checksum("types"), hexDump(t, plain, "types")

				var xid string
				err := e.tm.Do(context.Background(), tm.Options{Name: "fidelity", Timeout: 30 * time.Second}, func(ctx context.Context) error {
					xid = xidOf(t, ctx)
					if path == "autocommit" {
						for _, s := range stmts {
							if _, err := d.db.ExecContext(ctx, s.sql, s.args...); err != nil {
								return fmt.Errorf("%.40s: %w", s.sql, err)
							}
						}
					} else {
						tx, err := d.db.BeginTx(ctx, nil)
						if err != nil {
							return err
						}
						defer tx.Rollback()
						for _, s := range stmts {
							if _, err := tx.ExecContext(ctx, s.sql, s.args...); err != nil {
								return fmt.Errorf("%.40s: %w", s.sql, err)
							}
						}
						if err := tx.Commit(); err != nil {
							return err
						}
					}
					if slices.Equal(hexDump(t, plain, "types"), dump0) {
						t.Error("the branch changed nothing")
					}
					return errRollback
				})
				if !errors.Is(err, errRollback) {
					t.Fatalf("Do = %v", err)
				}
				g := e.settled(xid)
				if g.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED || g.GetParked() {
					t.Fatalf("global %v (parked %v, %q), want ROLLBACKED", g.GetStatus(), g.GetParked(), g.GetReason())
				}
				if got := hexDump(t, plain, "types"); !slices.Equal(got, dump0) {
					t.Errorf("after rollback:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(dump0, "\n"))
				}
				if got := d.checksum("types"); got != sum0 {
					t.Errorf("CHECKSUM TABLE after rollback = %s, want %s", got, sum0)
				}
				if n, m := d.undoLogs(); n != 0 || m != 0 {
					t.Errorf("undo_log = %d logs, %d markers, want none", n, m)
				}
			})
		}
	}
}

// hexDump returns the rows of table as text: HEX of each column's bytes,
// exact forms of floats and of TIMESTAMPs (as Unix time, independent of
// the session's time zone), sorted.
func hexDump(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.Query("SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION", table)
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			t.Fatal(err)
		}
		col := qi(name)
		switch typ {
		case "float", "double":
			exprs = append(exprs, "IFNULL(CONCAT(CAST("+col+" AS DOUBLE)), 'NULL')")
		case "timestamp":
			exprs = append(exprs, "IFNULL(CONCAT(UNIX_TIMESTAMP("+col+")), 'NULL')")
		default:
			exprs = append(exprs, "IFNULL(HEX(CAST("+col+" AS BINARY)), 'NULL')")
		}
	}
	rows.Close()
	rows, err = db.Query("SELECT CONCAT_WS('|', " + strings.Join(exprs, ", ") + ") FROM " + qi(table))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
