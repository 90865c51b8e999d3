package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xact-io/xact/internal/tlstest"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/storage/embedded"
	"github.com/xact-io/xact/tc"
	"github.com/xact-io/xact/tc/ledger"
	"github.com/xact-io/xact/tc/tctest"
)

// fill writes n globals with two branches each into s.
func fill(t *testing.T, s storage.Store, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		xid := fmt.Sprintf("cli-%d", i)
		if err := s.CreateGlobal(ctx, &storage.Global{XID: xid, Status: xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN, Deadline: time.Now().Add(time.Hour)}, storage.Durable); err != nil {
			t.Fatal(err)
		}
		for b := range 2 {
			b := &storage.Branch{XID: xid, Resource: "db", LockKeys: []string{fmt.Sprintf("%s-%d", xid, b)}}
			if _, _, err := s.AddBranch(ctx, b, nil, func(*storage.Global) error { return nil }, storage.Durable); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func runStore(t *testing.T, args ...string) (code int, out string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code = run(context.Background(), append([]string{"store"}, args...), &stdout, &stderr)
	return code, stdout.String() + stderr.String()
}

// TestStoreOffline: backup of a stopped coordinator's directory, verify of
// the backup, restore, verify of the restored directory; verify of a
// damaged directory fails and names the file.
func TestStoreOffline(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	s, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, s, 20)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(tmp, "xact.bak")
	steps := [][]string{
		{"backup", "--data-dir", dir, "--out", file},
		{"verify", "--backup", file},
		{"restore", "--in", file, "--data-dir", filepath.Join(tmp, "restored")},
		{"verify", "--data-dir", filepath.Join(tmp, "restored")},
		{"verify", "--data-dir", dir},
	}
	for _, args := range steps {
		code, out := runStore(t, args...)
		if code != 0 || !strings.Contains(out, "20 globals") {
			t.Fatalf("xact store %s = %d, %q; want 0 and 20 globals", strings.Join(args, " "), code, out)
		}
	}
	// Restoring over a directory in use is refused.
	if code, out := runStore(t, "restore", "--in", file, "--data-dir", dir); code == 0 || !strings.Contains(out, "not empty") {
		t.Errorf("restore into a used directory = %d, %q; want a refusal", code, out)
	}

	sst := filepath.Join(dir, "000001.sst")
	b, err := os.ReadFile(sst)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/3] ^= 0x20
	if err := os.WriteFile(sst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := runStore(t, "verify", "--data-dir", dir); code != 1 || !strings.Contains(out, "DAMAGED") || !strings.Contains(out, "000001.sst") {
		t.Errorf("verify of a damaged directory = %d, %q; want 1, DAMAGED, 000001.sst", code, out)
	}
	if code, out := runStore(t, "backup", "--data-dir", dir, "--out", filepath.Join(tmp, "bad.bak")); code != 1 || !strings.Contains(out, "000001.sst") {
		t.Errorf("backup of a damaged directory = %d, %q; want 1 naming 000001.sst", code, out)
	}
	if _, err := os.Stat(filepath.Join(tmp, "bad.bak")); !os.IsNotExist(err) {
		t.Errorf("a failed backup left its file: %v", err)
	}
}

// TestStoreOnline backs up a running coordinator through its Admin API and
// restores the backup.
func TestStoreOnline(t *testing.T) {
	srv := tctest.Start(t, tctest.WithBadger())
	fill(t, srv.Store(), 10)
	tmp := t.TempDir()
	file := filepath.Join(tmp, "online.bak")
	if code, out := runStore(t, "backup", "--server", srv.Addr(), "--out", file); code != 0 || !strings.Contains(out, "10 globals") {
		t.Fatalf("online backup = %d, %q; want 0 and 10 globals", code, out)
	}
	restored := filepath.Join(tmp, "restored")
	if code, out := runStore(t, "restore", "--in", file, "--data-dir", restored); code != 0 {
		t.Fatalf("restore = %d, %q", code, out)
	}
	s, err := embedded.Open(restored)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bs, err := s.Branches(context.Background(), "cli-3")
	if err != nil || len(bs) != 2 {
		t.Errorf("restored Branches(cli-3) = %d, %v; want 2", len(bs), err)
	}
	lg, err := ledger.Open(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if locks, _ := lg.Locks(context.Background(), "", 0); len(locks) != 20 {
		t.Errorf("restored store holds %d locks, want 20", len(locks))
	}
}

// TestStoreBackupTLS: `xact store backup --server` reaches a coordinator
// that serves mutual TLS and has an operator token with the client flags
// of xact tx (on the command line or as XACT_*), and is refused, with what
// to give, without TLS or with the participant token; a refused backup
// leaves no file.
func TestStoreBackupTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "xact test CA")
	clients := tlstest.NewCA(t, "xact clients CA")
	cert, key := ca.Server(t)
	caFile := ca.CAFile(t)
	clientCert, clientKey := clients.Client(t, "operator")
	srv := tctest.Start(t, tctest.WithBadger(), tctest.WithConfig(func(c *tc.Config) {
		c.TLSCertFile, c.TLSKeyFile, c.ClientCAFile = cert, key, clients.CAFile(t)
		c.Token, c.OperatorToken = "part-s3cret", "op-s3cret"
	}))
	fill(t, srv.Store(), 5)
	tmp := t.TempDir()
	tlsFlags := []string{"--server", srv.Addr(), "--tls-ca", caFile, "--tls-cert", clientCert, "--tls-key", clientKey}

	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"operator, mutual TLS", append(tlsFlags, "--token", "op-s3cret"), 0, "5 globals"},
		{"no TLS", []string{"--server", srv.Addr(), "--token", "op-s3cret"}, 1, "--tls-ca"},
		{"no client certificate", []string{"--server", srv.Addr(), "--tls-ca", caFile, "--token", "op-s3cret"}, 1, "backup from"},
		{"participant token", append(tlsFlags, "--token", "part-s3cret"), 1, "operator"},
		{"no token", tlsFlags, 1, "XACT_TOKEN"},
		{"--tls-cert without --tls-key", []string{"--server", srv.Addr(), "--tls-cert", clientCert, "--token", "op-s3cret"}, 2, "--tls-cert and --tls-key go together"},
	}
	for i, tt := range tests {
		file := filepath.Join(tmp, fmt.Sprintf("%d.bak", i))
		code, out := runStore(t, append([]string{"backup", "--out", file}, tt.args...)...)
		if code != tt.code || !strings.Contains(out, tt.want) {
			t.Errorf("xact store backup (%s) = %d, %q; want %d and output containing %q", tt.name, code, out, tt.code, tt.want)
		}
		if _, err := os.Stat(file); (err == nil) != (tt.code == 0) {
			t.Errorf("xact store backup (%s) = %d; the backup file: %v", tt.name, code, err)
		}
	}
	if code, out := runStore(t, "verify", "--backup", filepath.Join(tmp, "0.bak")); code != 0 || !strings.Contains(out, "5 globals") {
		t.Errorf("xact store verify of the TLS backup = %d, %q; want 0 and 5 globals", code, out)
	}

	// The same from the environment, as the docs advise for the token.
	for k, v := range map[string]string{"XACT_SERVER": srv.Addr(), "XACT_TOKEN": "op-s3cret",
		"XACT_TLS_CA": caFile, "XACT_TLS_CERT": clientCert, "XACT_TLS_KEY": clientKey} {
		t.Setenv(k, v)
	}
	file := filepath.Join(tmp, "env.bak")
	if code, out := runStore(t, "backup", "--out", file); code != 0 || !strings.Contains(out, "5 globals") {
		t.Errorf("xact store backup (flags from XACT_*) = %d, %q; want 0 and 5 globals", code, out)
	}
}
