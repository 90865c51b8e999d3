package mysqldialect

import (
	"os/exec"
	"slices"
	"testing"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/xact-io/xact/internal/mysqltest"
)

// loadZone loads one named time zone into the server's time-zone tables
// (they are empty after mariadb-install-db), with mariadb-tzinfo-to-sql.
func loadZone(t *testing.T, cfg *gomysql.Config, zone string) {
	t.Helper()
	admin := cfg.Clone()
	admin.DBName = "mysql"
	admin.MultiStatements = true
	db := mysqltest.Open(t, admin)
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM time_zone_name WHERE Name = ?", zone).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		return
	}
	out, err := exec.Command("mariadb-tzinfo-to-sql", "/usr/share/zoneinfo/"+zone, zone).Output()
	if err != nil {
		t.Fatalf("mariadb-tzinfo-to-sql (from mariadb-server; zone files from tzdata): %v", err)
	}
	if _, err := db.Exec(string(out)); err != nil {
		t.Fatalf("load time zone %s: %v", zone, err)
	}
}

// TestTimestampDSTFold: two TIMESTAMP values that read the same in a
// session whose zone repeats an hour (02:30 on the day DST ends) are
// restored to their own instants, because images keep the instant, not
// the session's wall-clock text.
func TestTimestampDSTFold(t *testing.T) {
	e := newEnv(t)
	loadZone(t, e.cfg, "Europe/Berlin")
	e.exec("CREATE TABLE ev (id INT PRIMARY KEY, at TIMESTAMP(3) NULL, note VARCHAR(10))")
	// 00:30 and 01:30 UTC are both 02:30 in Berlin on 2024-10-27.
	utc := e.with(func(c *gomysql.Config) { c.Params = map[string]string{"time_zone": "'+00:00'"} })
	if _, err := utc.Exec("INSERT INTO ev VALUES (1, '2024-10-27 00:30:00.125', 'a'), (2, '2024-10-27 01:30:00.125', 'b')"); err != nil {
		t.Fatal(err)
	}
	berlin := e.with(func(c *gomysql.Config) { c.Params = map[string]string{"time_zone": "'Europe/Berlin'"} })
	var a, b string
	if err := berlin.QueryRow("SELECT CAST(MIN(at) AS CHAR), CAST(MAX(at) AS CHAR) FROM ev").Scan(&a, &b); err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("Berlin reads %s and %s; the test needs one wall-clock time for two instants", a, b)
	}
	sum0, dump0 := e.checksum("ev"), e.dump("ev")
	enc, keys, err := e.branch(berlin, q("UPDATE ev SET at = NOW(), note = 'x'"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rollback(berlin, enc, keys); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if got := e.dump("ev"); !slices.Equal(got, dump0) {
		t.Errorf("after rollback: %q, want %q", got, dump0)
	}
	if got := e.checksum("ev"); got != sum0 {
		t.Errorf("after rollback: %s, want %s", got, sum0)
	}
}
