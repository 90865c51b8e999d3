package mysql

import (
	"slices"
	"testing"
)

func TestSmoke(t *testing.T) {
	e := newEnv(t)
	e.exec("CREATE TABLE t (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10), n INT)",
		"INSERT INTO t (v, n) VALUES ('a', 1), ('b', 2), ('c', 3)")
	sum0, dump0 := e.checksum("t"), e.dump("t")
	enc, keys, err := e.branch(e.db,
		q("UPDATE t SET v = ? WHERE n >= ?", "x", 2),
		q("DELETE FROM t WHERE id = ?", 1),
		q("INSERT INTO t (v, n) VALUES (?, ?), (?, ?)", "new1", 10, "new2", 11),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("keys %v, %d bytes", keys, len(enc))
	if err := e.rollback(e.db, enc, keys); err != nil {
		t.Fatal(err)
	}
	if got := e.dump("t"); !slices.Equal(got, dump0) {
		t.Errorf("after rollback:\n%v\nwant\n%v", got, dump0)
	}
	if got := e.checksum("t"); got != sum0 {
		t.Errorf("checksum %s, want %s", got, sum0)
	}
}
