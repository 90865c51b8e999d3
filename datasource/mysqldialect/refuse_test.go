package mysqldialect

import (
	"context"
	"database/sql/driver"
	"errors"
	"strings"
	"testing"
)

func TestRefused(t *testing.T) {
	e := newEnv(t)
	e.exec(strings.Split(baseSchema, ";\n")...)
	e.exec(
		"CREATE TABLE nopk (a INT, b INT)",
		"CREATE TABLE nullu (a INT, b INT, UNIQUE KEY (a))",
		"CREATE TABLE isam (id INT PRIMARY KEY, v INT) ENGINE=MyISAM",
		"CREATE VIEW v_acct AS SELECT id, name FROM acct",
		"CREATE TABLE trg (id INT PRIMARY KEY, v INT)",
		"CREATE TABLE trg_log (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
		"CREATE TRIGGER trg_ai AFTER UPDATE ON trg FOR EACH ROW INSERT INTO trg_log (v) VALUES (NEW.v)",
		"CREATE TABLE parent (id INT PRIMARY KEY)",
		"CREATE TABLE child (id INT PRIMARY KEY, pid INT, FOREIGN KEY (pid) REFERENCES parent (id) ON DELETE CASCADE)",
		"CREATE TABLE prefix (id INT PRIMARY KEY, s VARCHAR(20), UNIQUE KEY (s(3)))",
		"CREATE TABLE hist (id INT PRIMARY KEY, v INT) WITH SYSTEM VERSIONING",
		"CREATE DATABASE IF NOT EXISTS xact_other_db",
	)
	t.Cleanup(func() { e.exec("DROP DATABASE IF EXISTS xact_other_db") })
	tests := []struct {
		sql    string
		args   []any
		reason string // part of the error message
	}{
		{"REPLACE INTO acct VALUES (1, 'a', 1)", nil, "REPLACE"},
		{"DELETE FROM acct WHERE bal > 0 LIMIT 1", nil, "LIMIT without the primary key"},
		{"UPDATE item SET qty = 0 ORDER BY qty, ord LIMIT 1", nil, "LIMIT without the primary key"},
		{"INSERT INTO acct (name, bal) SELECT name, bal FROM acct", nil, "INSERT … SELECT without keys"},
		{"INSERT INTO item SELECT * FROM item", nil, "SELECT *"},
		{"INSERT INTO item (ord, line, qty) SELECT ord + 10, line, qty FROM item LIMIT 1", nil, "LIMIT"},
		{"INSERT INTO item (ord, line, qty) SELECT id, 1, 1 FROM acct UNION SELECT 9, 9, 9", nil, "set operation"},
		{"INSERT IGNORE INTO item (ord, line, qty) SELECT ord + 10, line, qty FROM item", nil, "IGNORE"},
		{"INSERT INTO item (ord, line, qty) SELECT FLOOR(RAND() * 100), 1, 1", nil, "RAND()"},
		{"UPDATE acct SET id = 5 WHERE id = 1", nil, "primary-key column"},
		{"INSERT INTO acct (id, name, bal) VALUES (1, 'a', 1) ON DUPLICATE KEY UPDATE id = 7", nil, "primary-key column"},
		{"UPDATE nopk SET b = 1", nil, "no primary key"},
		{"DELETE FROM nopk", nil, "no primary key"},
		// A unique key over a nullable column does not identify a row.
		{"UPDATE nullu SET b = 1", nil, "no primary key"},
		{"UPDATE isam SET v = 1", nil, "engine MyISAM"},
		{"UPDATE v_acct SET name = 'x'", nil, "view"},
		{"UPDATE acct a JOIN v_acct v ON v.id = a.id SET v.name = 'x'", nil, "view"},
		{"UPDATE acct a JOIN v_acct v ON v.id = a.id SET name = 'x'", nil, "qualify it"},
		{"DELETE v FROM acct a JOIN v_acct v ON v.id = a.id", nil, "view"},
		{"SELECT * FROM v_acct FOR UPDATE", nil, "view"},
		{"UPDATE trg SET v = 1", nil, "trigger"},
		{"DELETE FROM parent WHERE id = 1", nil, "cascades"},
		{"INSERT INTO prefix VALUES (1, 'abc') ON DUPLICATE KEY UPDATE s = 'x'", nil, "prefix"},
		{"UPDATE hist SET v = 1", nil, "system-versioned"},
		{"CREATE TABLE x (id INT)", nil, "DDL"},
		{"ALTER TABLE acct ADD COLUMN z INT", nil, "DDL"},
		{"TRUNCATE TABLE acct", nil, "DDL"},
		{"DROP TABLE acct", nil, "DDL"},
		{"DELETE FROM acct WHERE id = FLOOR(RAND() * 3)", nil, "RAND()"},
		{"UPDATE acct SET bal = 1 WHERE (@n := id) > 0", nil, "assignment"},
		{"UPDATE acct SET bal = 1; DELETE FROM acct", nil, "2 statements"},
		{"LOAD DATA INFILE '/tmp/x' INTO TABLE acct", nil, "LOAD DATA"},
		{"CALL p()", nil, "CALL"},
		{"COMMIT", nil, "Tx.Commit"},
		{"ROLLBACK", nil, "Tx.Rollback"},
		{"START TRANSACTION", nil, "BeginTx"},
		{"SAVEPOINT `café`", nil, "not ASCII"},
		{"SET autocommit = 1", nil, "autocommit"},
		{"SET SESSION completion_type = 'CHAIN'", nil, "completion_type"},
		{"SET @@completion_type = 2", nil, "completion_type"},
		{"LOCK TABLES acct WRITE", nil, "LOCK"},
		{"USE xact_other_db", nil, "USE"},
		{"INSERT INTO acct (id, name, bal) VALUES (NULL, 'a', 1), (9, 'b', 2)", nil, "mixes generated and explicit"},
		{"INSERT IGNORE INTO acct (name, bal) VALUES ('a', 1)", nil, "INSERT IGNORE with generated"},
		{"INSERT INTO acct (id, name, bal) VALUES (1 + 1, 'a', 1)", nil, "expression"},
		{"INSERT INTO acct (id, name, bal) VALUES (UUID_SHORT(), 'a', 1)", nil, "expression"},
		{"INSERT INTO item (line, qty) VALUES (1, 1)", nil, "takes its default"},
		{"UPDATE acct SET bal = 1 WHERE id = 1 RETURNING id", nil, "cannot parse"},
		{"UPDATE xact_other_db.acct SET bal = 1", nil, "outside the branch's database"},
		{"SELECT * FROM (SELECT * FROM acct) d FOR UPDATE", nil, "derived table"},
		{"SELECT id FROM acct UNION SELECT id FROM acct FOR UPDATE", nil, "UNION"},
		{"WITH c AS (SELECT 1) UPDATE acct SET bal = 1", nil, "WITH"},
		{"UPDATE acct SET nosuch = 1", nil, "unknown column"},
		{"UPDATE acct a JOIN item i ON i.ord = a.id SET qty = 1, nosuch = 2", nil, "unknown column"},
		{"CREATE TEMPORARY TABLE tmp (id INT PRIMARY KEY)", nil, "DDL"},
		{"UPDATE acct SET bal = 1 WHERE id = ? OR id = ?", []any{1}, "2 placeholders, 1 arguments"},
	}
	for _, tt := range tests {
		err := tx(t, e.db, func(ctx context.Context, conn driver.Conn) error {
			_, err := e.d.Prepare(ctx, conn, tt.sql, nv(tt.args))
			return err
		})
		if err == nil {
			t.Errorf("Prepare(%q) = nil error, want a refusal (%s)", tt.sql, tt.reason)
			continue
		}
		if !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("Prepare(%q) = %v, want a message containing %q", tt.sql, err, tt.reason)
		}
		if !errors.Is(err, ErrUnsupported) && !strings.Contains(tt.reason, "placeholders") {
			t.Errorf("Prepare(%q) = %v, want ErrUnsupported", tt.sql, err)
		}
	}
}

// TestTemporaryTable: a temporary table is invisible to information_schema,
// so its rows cannot be imaged.
func TestTemporaryTable(t *testing.T) {
	e := newEnv(t)
	err := tx(t, e.db, func(ctx context.Context, conn driver.Conn) error {
		if _, err := execute(ctx, conn, "CREATE TEMPORARY TABLE tmp (id INT PRIMARY KEY, v INT)", nil); err != nil {
			t.Fatal(err)
		}
		_, err := e.d.Prepare(ctx, conn, "UPDATE tmp SET v = 1", nil)
		return err
	})
	if !errors.Is(err, ErrUnsupported) || !errors.Is(err, ErrTableNotFound) {
		t.Errorf("Prepare(UPDATE tmp) = %v, want ErrUnsupported and ErrTableNotFound", err)
	}
}
