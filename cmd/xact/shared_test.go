package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/xact-io/xact/internal/mysqltest"
)

// TestServerOnSharedDatabase: `xact server --store mysql` refuses a
// database without the coordinator schema, naming `xact sql migrate`;
// after the migration it serves global transactions whose records are in
// the database, and finishes them all.
func TestServerOnSharedDatabase(t *testing.T) {
	cfg := mysqltest.Config(t)
	dsn := cfg.FormatDSN()
	db := mysqltest.Open(t, cfg)

	code, out := xact("server", "--store", "mysql", "--store-dsn", dsn, "--listen", "127.0.0.1:0", "--log-level", "error")
	if code != 1 || !strings.Contains(out, "xact sql migrate") {
		t.Fatalf("xact server on a database without the schema = %d, %q; want 1 naming `xact sql migrate`", code, out)
	}
	if code, out := xact("server", "--store", "badger", "--store-dsn", dsn); code != 2 || !strings.Contains(out, "--store-dsn needs --store mysql or postgres") {
		t.Errorf("xact server --store badger --store-dsn = %d, %q; want a usage error", code, out)
	}
	if code, out := xact("sql", "migrate", "--store", "mysql", "--store-dsn", dsn); code != 0 || !strings.Contains(out, "from version 0 to 1") {
		t.Fatalf("xact sql migrate = %d, %q", code, out)
	}
	if code, out := xact("sql", "migrate", "--store", "mysql", "--store-dsn", dsn); code != 0 || !strings.Contains(out, "nothing to do") {
		t.Fatalf("xact sql migrate again = %d, %q", code, out)
	}

	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"server", "--store", "mysql", "--store-dsn", dsn, "--listen", "127.0.0.1:0", "--log-level", "error"}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening on ") {
		cancel()
		t.Fatalf("xact server --store mysql printed %q, %v", line, err)
	}
	go io.Copy(io.Discard, pr)
	addr := strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
	code, out = xact("bench", "--server", addr, "--duration", "1s", "--warmup", "0s", "--concurrency", "4", "--json")
	var res benchResult
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &res); code != 0 || err != nil || res.Errors != 0 || res.Committed == 0 {
		t.Errorf("xact bench against the shared-database server = %d, %q (%v); want commits and no errors", code, out, err)
	}
	code, out = xact("cluster", "status", "--store", "mysql", "--store-dsn", dsn, "--json")
	var st struct {
		Nodes []clusterNode `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || len(st.Nodes) != 1 ||
		st.Nodes[0].ID != "tc1" || !st.Nodes[0].Live || st.Nodes[0].Epoch != 1 || st.Nodes[0].Addr != addr {
		t.Errorf("xact cluster status --json = %d, %q (%v); want one live node tc1, epoch 1, at %s", code, out, err, addr)
	}
	if code, out := xact("cluster", "status", "--store", "mysql", "--store-dsn", dsn); code != 0 || !strings.Contains(out, "tc1") {
		t.Errorf("xact cluster status = %d, %q", code, out)
	}
	if code, out := xact("cluster", "status", "--store", "oracle", "--store-dsn", dsn); code != 2 {
		t.Errorf("xact cluster status --store oracle = %d, %q; want a usage error", code, out)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("xact server exited %d after its context ended, want 0", code)
	}

	var finished, live int
	if err := db.QueryRow("SELECT COUNT(*) FROM xact_globals WHERE finished").Scan(&finished); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT COUNT(*) FROM xact_globals WHERE NOT finished").Scan(&live); err != nil {
		t.Fatal(err)
	}
	if finished < int(res.Committed) || live != 0 {
		t.Errorf("xact_globals holds %d finished and %d live globals; want at least the %d committed, and none live", finished, live, res.Committed)
	}
}

// TestCoordinatorSchemaDDL: the DDL `xact sql coordinator-schema` prints,
// applied by hand, is a schema the store opens.
func TestCoordinatorSchemaDDL(t *testing.T) {
	code, out := xact("sql", "coordinator-schema", "--dialect", "mysql")
	if code != 0 || !strings.Contains(out, "CREATE TABLE IF NOT EXISTS xact_globals") {
		t.Fatalf("xact sql coordinator-schema = %d, %q", code, out)
	}
	cfg := mysqltest.Config(t)
	db := mysqltest.Open(t, cfg)
	applyDDL(t, db, out)
	code, msg := xact("sql", "migrate", "--store", "mysql", "--store-dsn", cfg.FormatDSN())
	if code != 0 || !strings.Contains(msg, "nothing to do") {
		t.Errorf("xact sql migrate after the printed DDL = %d, %q; want nothing to do", code, msg)
	}
	if code, out := xact("sql", "coordinator-schema", "--dialect", "oracle"); code != 2 {
		t.Errorf("xact sql coordinator-schema --dialect oracle = %d, %q; want 2", code, out)
	}
	if code, out := xact("sql", "coordinator-schema", "--dialect", "postgres"); code != 0 || !strings.Contains(out, "BYTEA") {
		t.Errorf("xact sql coordinator-schema --dialect postgres = %d, %q", code, out)
	}
}

// applyDDL runs the statements of a printed schema one by one.
func applyDDL(t *testing.T, db *sql.DB, ddl string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, stmt := range strings.Split(ddl, ";\n") {
		var lines []string
		for _, l := range strings.Split(stmt, "\n") {
			if !strings.HasPrefix(strings.TrimSpace(l), "--") {
				lines = append(lines, l)
			}
		}
		if s := strings.TrimSpace(strings.Join(lines, "\n")); s != "" {
			if _, err := db.ExecContext(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	}
}
