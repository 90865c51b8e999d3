package main

import (
	"bytes"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
)

func TestStartStop(t *testing.T) {
	// Not t.TempDir: as root, the server's user must reach the directory.
	dir, err := os.MkdirTemp("", "xact-pgtest-cmd.")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	portFile := filepath.Join(t.TempDir(), "port")
	var out bytes.Buffer
	if err := run([]string{"start", "--dir", dir, "--port-file", portFile}, &out, os.Stderr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = run([]string{"stop", "--dir", dir}, os.Stdout, os.Stderr) })
	dsn := strings.TrimSpace(out.String())
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("start printed %q: %v", dsn, err)
	}
	b, err := os.ReadFile(portFile)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := "127.0.0.1:"+strings.TrimSpace(string(b)), u.Host; got != want {
		t.Errorf("port file says %s, DSN says %s", got, want)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}

	// A second start finds the running server.
	var again bytes.Buffer
	if err := run([]string{"start", "--dir", dir}, &again, os.Stderr); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(again.String()), dsn; got != want {
		t.Errorf("second start printed %q, want %q", got, want)
	}
	if err := run([]string{"stop", "--dir", dir}, os.Stdout, os.Stderr); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err == nil {
		t.Error("server still answers after stop")
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"start"}, {"stop"}, {"restart", "--dir", "x"}} {
		if err := run(args, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("run(%q) = nil, want a usage error", args)
		}
	}
}
