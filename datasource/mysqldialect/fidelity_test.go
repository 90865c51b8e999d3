package mysqldialect

import (
	"context"
	"database/sql/driver"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/xact-io/xact/internal/mysqltest"
	"github.com/xact-io/xact/undo"
)

// fidelitySide is one connection configuration.
type fidelitySide struct {
	name        string
	interpolate bool
	parseTime   bool
	loc         string
	timeZone    string
	charset     string
}

func (s fidelitySide) apply(t *testing.T) envOption {
	return func(c *gomysql.Config) {
		c.InterpolateParams = s.interpolate
		c.ParseTime = s.parseTime
		if s.loc != "" {
			loc, err := time.LoadLocation(s.loc)
			if err != nil {
				t.Fatal(err)
			}
			c.Loc = loc
		}
		if c.Params == nil {
			c.Params = map[string]string{}
		}
		c.Params["time_zone"] = "'" + s.timeZone + "'"
		if s.charset != "" {
			if err := c.Apply(gomysql.Charset(s.charset, "")); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestTypeFidelity: image -> encode -> decode -> compensating SQL leaves
// every row byte-identical (CHECKSUM TABLE), whatever the driver settings
// and session of the branch and of the rollback.
func TestTypeFidelity(t *testing.T) {
	a := fidelitySide{name: "binary-protocol utf8mb4 +05:30", timeZone: "+05:30"}
	b := fidelitySide{name: "interpolated parseTime latin1 -08:00", interpolate: true, parseTime: true, loc: "Asia/Tokyo", timeZone: "-08:00", charset: "latin1"}
	for _, pair := range [][2]fidelitySide{{a, b}, {b, a}} {
		t.Run(pair[0].name+" then "+pair[1].name, func(t *testing.T) {
			e := newEnv(t)
			e.exec(mysqltest.TypesSchema)
			e.exec(mysqltest.TypesRows...)
			sum0, dump0 := e.checksum("types"), e.dump("types")
			branchDB := e.with(pair[0].apply(t))
			rollbackDB := e.with(pair[1].apply(t))
			enc, keys, err := e.branch(branchDB,
				q(mysqltest.TypesUpdate, 3),
				q("DELETE FROM types WHERE id = ?", 4),
				q("INSERT INTO types (id, u64, f, ts6, ts0, vc, bt) VALUES (?, ?, ?, ?, '2020-02-02 02:02:02', ?, ?)", 5, uint64(math.MaxUint64), 0.1, "2021-06-01 12:00:00.123456", "new", 3),
			)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.dump("types"); slices.Equal(got, dump0) {
				t.Fatal("the branch changed nothing")
			}
			if err := e.rollback(rollbackDB, enc, keys); err != nil {
				t.Fatalf("rollback: %v", err)
			}
			if got := e.dump("types"); !slices.Equal(got, dump0) {
				t.Errorf("after rollback:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(dump0, "\n"))
			}
			if got := e.checksum("types"); got != sum0 {
				t.Errorf("after rollback: %s, want %s", got, sum0)
			}
			// The rollback connection's session time zone is restored.
			var tz string
			if err := rollbackDB.QueryRow("SELECT @@SESSION.time_zone").Scan(&tz); err != nil {
				t.Fatal(err)
			}
			if tz != pair[1].timeZone {
				t.Errorf("session time_zone after rollback = %q, want %q", tz, pair[1].timeZone)
			}
		})
	}
}

// TestImageValues checks the captured values of the edge row directly.
func TestImageValues(t *testing.T) {
	e := newEnv(t)
	e.exec(mysqltest.TypesSchema)
	e.exec(mysqltest.TypesRows...)
	var rec undo.Record
	err := tx(t, e.with(fidelitySide{timeZone: "+05:30", parseTime: true}.apply(t)), func(ctx context.Context, conn driver.Conn) error {
		p, err := run(ctx, e.d, conn, "DELETE FROM types WHERE id IN (1, 2)")
		if err != nil {
			return err
		}
		rec = p.Records()[0]
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]undo.Value{
		"u64":   {undo.Uint(math.MaxUint64), undo.Uint(0)},
		"i64":   {undo.Int(math.MinInt64), undo.Int(0)},
		"dec65": {undo.Decimal("12345678901234567890123456789012345.123456789012345678901234567890"), undo.Decimal("-0.000000000000000000000000000001")},
		"f":     {undo.Float(float64(float32(1.23456789))), undo.Float(float64(float32(-3.4e38)))},
		"d":     {undo.Float(1.2345678901234567e-300), undo.Float(4.9e-324)},
		"dt6":   {undo.Time("9999-12-31 23:59:59.999999"), undo.Time("0000-00-00 00:00:00.000000")},
		"ts6":   {undo.Time("2038-01-19 03:14:07.999999"), undo.Time("0000-00-00 00:00:00.000000")},
		"ts0":   {undo.Time("1970-01-01 00:00:01"), undo.Time("0000-00-00 00:00:00")},
		"da":    {undo.Time("1000-01-01"), undo.Time("0000-00-00")},
		"tm":    {undo.Time("-838:59:59.000"), undo.Time("00:00:00.000")},
		"yr":    {undo.Int(2155), undo.Int(0)},
		"bn":    {undo.Bytes([]byte("ab\x00\x00")), undo.Bytes([]byte("\x00\x00\x00\x00"))},
		"bt":    {undo.Uint(0b1010101010), undo.Uint(0)},
		"b64":   {undo.Uint(math.MaxUint64), undo.Uint(0)},
		"en":    {undo.String("ü"), undo.String("a")},
		"vcl":   {undo.String("\xe9"), undo.String("")},
		"ch":    {undo.String("ab"), undo.String("")},
		"emoji": {undo.String("😀🇩🇪"), undo.String("")},
		"gen":   {undo.Int(-127), undo.Int(1)},
		"inv":   {undo.Int(42), undo.Int(7)},
	}
	for name, vals := range want {
		for i := range 2 {
			got, ok := rec.Before[i].Get(name)
			if !ok {
				t.Errorf("row %d has no column %s", i+1, name)
				continue
			}
			if got != vals[i] {
				t.Errorf("row %d %s = %v, want %v", i+1, name, got, vals[i])
			}
		}
	}
}
