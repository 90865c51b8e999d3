package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/xact-io/xact/internal/tlstest"
	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
)

// startServer runs `xact server args...` in-process until the test ends
// and returns its gRPC address.
func startServer(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"server", "--store", "memory", "--listen", "127.0.0.1:0", "--log-level", "warn"}, args...), pw, &stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening on ") {
		cancel()
		<-done
		t.Fatalf("xact server %v printed %q (%v); stderr:\n%s", args, line, err, stderr.String())
	}
	go io.Copy(io.Discard, pr)
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("xact server exited %d; stderr:\n%s", code, stderr.String())
		}
	})
	return strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
}

// TestSecuredServer: `xact server` with TLS, client certificates and both
// tokens (the operator's from the environment, as the docs advise), driven
// by the CLI: the operator's commands work with the CA, a client
// certificate and the operator token; without TLS, without a client
// certificate, or with the participant token they are refused with a
// message that says what to give; `xact bench` (a TM and an RM) runs with
// the participant token.
func TestSecuredServer(t *testing.T) {
	ca := tlstest.NewCA(t, "xact test CA")
	clients := tlstest.NewCA(t, "xact clients CA")
	cert, key := ca.Server(t)
	caFile := ca.CAFile(t)
	clientCert, clientKey := clients.Client(t, "operator")
	t.Setenv("XACT_OPERATOR_TOKEN", "op-s3cret")
	addr := startServer(t, "--tls-cert", cert, "--tls-key", key, "--client-ca", clients.CAFile(t), "--token", "part-s3cret")

	// A participant begins a global over mutual TLS.
	creds, err := protocol.ClientTLS(caFile, clientCert, clientKey, "")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, append(protocol.DialOptions(), creds, protocol.WithToken("part-s3cret"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began, err := xactpb.NewCoordinatorClient(conn).Begin(ctx, &xactpb.BeginRequest{Name: "tls-test", TimeoutMs: 600000})
	if err != nil {
		t.Fatalf("Begin over mutual TLS: %v", err)
	}
	xid := began.GetXid()

	tlsFlags := []string{"--server", addr, "--tls-ca", caFile, "--tls-cert", clientCert, "--tls-key", clientKey}
	operator := append(tlsFlags, "--token", "op-s3cret")
	if code, out := xact(append([]string{"tx", "list"}, operator...)...); code != 0 || !strings.Contains(out, xid) {
		t.Errorf("xact tx list (operator, mutual TLS) = %d, %q; want 0 listing %s", code, out, xid)
	}
	if code, out := xact(append([]string{"lock", "list", "--json"}, operator...)...); code != 0 {
		t.Errorf("xact lock list (operator, mutual TLS) = %d, %q; want 0", code, out)
	}

	refused := []struct {
		name string
		args []string
		want string
	}{
		{"no TLS", []string{"--server", addr, "--token", "op-s3cret"}, "--tls-ca"},
		{"no client certificate", []string{"--server", addr, "--tls-ca", caFile, "--token", "op-s3cret"}, ""},
		{"participant token", append(tlsFlags, "--token", "part-s3cret"), "operator token"},
		{"no token", tlsFlags, "XACT_TOKEN"},
	}
	for _, tt := range refused {
		code, out := xact(append([]string{"tx", "rollback", xid}, tt.args...)...)
		if code != 1 || !strings.Contains(out, tt.want) {
			t.Errorf("xact tx rollback (%s) = %d, %q; want 1 and output containing %q", tt.name, code, out, tt.want)
		}
	}
	st, err := xactpb.NewCoordinatorClient(conn).GetStatus(ctx, &xactpb.GetStatusRequest{Xid: xid})
	if err != nil || st.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN {
		t.Fatalf("after the refused rollbacks: GetStatus = %v, %v; want BEGIN", st, err)
	}
	if code, out := xact(append([]string{"tx", "rollback", xid}, operator...)...); code != 0 || !strings.Contains(out, "ROLLBACKED") {
		t.Errorf("xact tx rollback (operator) = %d, %q; want 0 and ROLLBACKED", code, out)
	}

	code, out := xact(append([]string{"bench", "--duration", "300ms", "--warmup", "0s", "--concurrency", "2", "--json", "--token", "part-s3cret"}, tlsFlags...)...)
	var res benchResult
	if i := strings.Index(out, "{"); code != 0 || i < 0 || json.Unmarshal([]byte(out[i:]), &res) != nil || res.Errors != 0 || res.Committed == 0 {
		t.Errorf("xact bench over mutual TLS = %d, %q; want commits and no errors", code, out)
	}
}

// TestClientTLSFlagErrors: TLS flags that cannot work are refused before
// anything is dialed, naming the flag or the file.
func TestClientTLSFlagErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.pem")
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"tx", "list", "--tls-cert", "c.pem"}, 2, "--tls-cert and --tls-key go together"},
		{[]string{"tx", "list", "--tls-ca", missing}, 1, missing},
		{[]string{"lock", "list", "--tls-ca", missing}, 1, missing},
	}
	for _, tt := range tests {
		code, out := xact(append(tt.args, "--server", "127.0.0.1:1")...)
		if code != tt.code || !strings.Contains(out, tt.want) {
			t.Errorf("xact %v = %d, %q; want %d and output containing %q", tt.args, code, out, tt.code, tt.want)
		}
	}
}

// TestServerTLSFileErrors: `xact server` stops at start on a TLS file it
// cannot use, naming the flag and the file; settings that cannot work
// together are usage errors.
func TestServerTLSFileErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "xact test CA")
	cert, key := ca.Server(t)
	_, otherKey := ca.Server(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--tls-cert", missing, "--tls-key", key}, 1, `--tls-cert must name a readable file, got "` + missing},
		{[]string{"--tls-cert", cert, "--tls-key", missing}, 1, `--tls-key must name a readable file, got "` + missing},
		{[]string{"--tls-cert", cert, "--tls-key", otherKey}, 1, `--tls-key must hold the PEM private key of --tls-cert ("` + cert + `"), got "` + otherKey},
		{[]string{"--tls-cert", cert, "--tls-key", key, "--client-ca", key}, 1, `--client-ca must hold at least one PEM certificate, got "` + key},
		{[]string{"--tls-cert", cert}, 2, "--tls-key must be set with --tls-cert"},
		{[]string{"--client-ca", cert}, 2, "--client-ca needs --tls-cert"},
		{[]string{"--token", "same", "--operator-token", "same"}, 2, "--operator-token must differ from --token"},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var out lockedBuffer
		code := run(ctx, append([]string{"server", "--store", "memory", "--listen", "127.0.0.1:0"}, tt.args...), &out, &out)
		cancel()
		if code != tt.code || !strings.Contains(out.String(), tt.want) {
			t.Errorf("xact server %v = %d, %q; want %d and output containing %q", tt.args, code, out.String(), tt.code, tt.want)
		}
		if strings.Contains(out.String(), "TLSCertFile") || strings.Contains(out.String(), "listening on") {
			t.Errorf("xact server %v: %q names a Config field or started", tt.args, out.String())
		}
	}
}

// TestSecurityHelp: the TLS and token flags are in the help of the
// commands that take them.
func TestSecurityHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"server", "--help"}, []string{"--tls-cert file", "--tls-key file", "--client-ca file", "--operator-token token", "XACT_OPERATOR_TOKEN", "XACT_TOKEN"}},
		{[]string{"tx", "list", "--help"}, []string{"--tls", "--tls-ca file", "--tls-cert file", "--tls-key file", "--tls-server-name name"}},
		{[]string{"lock", "list", "--help"}, []string{"--tls-ca file"}},
		{[]string{"bench", "--help"}, []string{"--tls-ca file"}},
	}
	for _, tt := range tests {
		code, out := xact(tt.args...)
		for _, w := range tt.want {
			if code != 0 || !strings.Contains(out, w) {
				t.Errorf("xact %v = %d, output does not contain %q:\n%s", tt.args, code, w, out)
			}
		}
	}
}
