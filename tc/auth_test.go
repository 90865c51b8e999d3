package tc_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/xact-io/xact/internal/tlstest"
	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/tc"
	"github.com/xact-io/xact/tc/tctest"
)

// dialWith connects to srv with protocol.DialOptions and opts (transport
// credentials: plaintext unless opts has some); closed at cleanup.
func dialWith(t *testing.T, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	all := append(protocol.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	conn, err := grpc.NewClient(addr, append(all, opts...)...)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func clientTLS(t *testing.T, ca, cert, key string) grpc.DialOption {
	t.Helper()
	opt, err := protocol.ClientTLS(ca, cert, key, "")
	if err != nil {
		t.Fatalf("ClientTLS: %v", err)
	}
	return opt
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestTLS: a TC with a certificate serves TLS only. A client that trusts
// its CA gets answers; a plaintext client, and one that trusts another
// CA, are refused at the handshake, with errors that say what is wrong.
// The health service answers over TLS without a token.
func TestTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "xact test CA")
	cert, key := ca.Server(t)
	srv := tctest.Start(t, tctest.WithConfig(func(c *tc.Config) {
		c.TLSCertFile, c.TLSKeyFile = cert, key
		c.Token = "participant"
	}))
	ctx := callCtx(t)

	good := dialWith(t, srv.Addr(), clientTLS(t, ca.CAFile(t), "", ""), protocol.WithToken("participant"))
	if _, err := xactpb.NewCoordinatorClient(good).Begin(ctx, &xactpb.BeginRequest{TimeoutMs: 60000}); err != nil {
		t.Fatalf("Begin over TLS: %v", err)
	}
	hc, err := healthpb.NewHealthClient(dialWith(t, srv.Addr(), clientTLS(t, ca.CAFile(t), "", ""))).
		Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health check over TLS without a token = %v, %v; want SERVING", hc, err)
	}

	other := tlstest.NewCA(t, "another CA")
	tests := []struct {
		name string
		opts []grpc.DialOption
		want string // in the client's error
	}{
		{"plaintext client", nil, ""},
		{"client trusting another CA", []grpc.DialOption{clientTLS(t, other.CAFile(t), "", "")}, "certificate signed by unknown authority"},
		{"client expecting another name", []grpc.DialOption{mustTLS(t, ca.CAFile(t), "tc.example")}, "certificate is valid for"},
	}
	for _, tt := range tests {
		conn := dialWith(t, srv.Addr(), append(tt.opts, protocol.WithToken("participant"))...)
		_, err := xactpb.NewCoordinatorClient(conn).Begin(ctx, &xactpb.BeginRequest{TimeoutMs: 60000})
		t.Logf("%s: %v", tt.name, err)
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Begin = %v; want Unavailable containing %q", tt.name, err, tt.want)
		}
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func mustTLS(t *testing.T, ca, serverName string) grpc.DialOption {
	t.Helper()
	opt, err := protocol.ClientTLS(ca, "", "", serverName)
	if err != nil {
		t.Fatal(err)
	}
	return opt
}

// TestMutualTLS: a TC with a client CA admits only clients that present a
// certificate that CA signed: one without a certificate, and one whose
// certificate another CA signed, are refused during the handshake,
// before any call reaches a handler.
func TestMutualTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "xact test CA")
	clients := tlstest.NewCA(t, "xact clients CA")
	other := tlstest.NewCA(t, "another CA")
	cert, key := ca.Server(t)
	srv := tctest.Start(t, tctest.WithConfig(func(c *tc.Config) {
		c.TLSCertFile, c.TLSKeyFile = cert, key
		c.ClientCAFile = clients.CAFile(t)
	}))
	ctx := callCtx(t)
	caFile := ca.CAFile(t)
	goodCert, goodKey := clients.Client(t, "rm-1")
	strangerCert, strangerKey := other.Client(t, "stranger")

	conn := dialWith(t, srv.Addr(), clientTLS(t, caFile, goodCert, goodKey))
	if _, err := xactpb.NewCoordinatorClient(conn).Begin(ctx, &xactpb.BeginRequest{TimeoutMs: 60000}); err != nil {
		t.Fatalf("Begin with a client certificate: %v", err)
	}
	// A Go client sends no certificate that the server's list of
	// acceptable CAs rules out; this one sends it all the same, as
	// another client may.
	stranger, err := protocol.ClientTLSConfig(caFile, strangerCert, strangerKey, "")
	if err != nil {
		t.Fatal(err)
	}
	pair := stranger.Certificates[0]
	stranger.Certificates = nil
	stranger.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	tests := []struct {
		name string
		opt  grpc.DialOption
		want string
	}{
		{"no client certificate", clientTLS(t, caFile, "", ""), "tls: certificate required"},
		{"certificate from another CA, not sent", clientTLS(t, caFile, strangerCert, strangerKey), "tls: certificate required"},
		{"certificate from another CA", grpc.WithTransportCredentials(credentials.NewTLS(stranger)), "tls: unknown certificate authority"},
	}
	for _, tt := range tests {
		conn := dialWith(t, srv.Addr(), tt.opt)
		_, err := xactpb.NewCoordinatorClient(conn).Begin(ctx, &xactpb.BeginRequest{TimeoutMs: 60000})
		t.Logf("%s: %v", tt.name, err)
		// With TLS 1.3 the client's handshake ends before the server
		// checks its certificate: the server's alert saying why races
		// with the client's first write, which may fail first.
		if status.Code(err) != codes.Unavailable || !containsAny(err.Error(), tt.want, "broken pipe", "connection reset") {
			t.Errorf("%s: Begin = %v; want Unavailable containing %q (refused at the handshake)", tt.name, err, tt.want)
		}
		// The Admin service is no more reachable than the Coordinator.
		_, err = xactpb.NewAdminClient(conn).ListGlobals(ctx, &xactpb.ListGlobalsRequest{})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("%s: ListGlobals = %v; want Unavailable", tt.name, err)
		}
	}
	gs, err := xactpb.NewAdminClient(conn).ListGlobals(ctx, &xactpb.ListGlobalsRequest{})
	if err != nil || len(gs.GetGlobals()) != 1 {
		t.Errorf("ListGlobals = %v, %v; want the one global the admitted client began", gs, err)
	}
}

// TestRoles: with an operator token, the Admin service admits only it: the
// participant token gets PermissionDenied (naming the role) before the
// handler runs, so a ForceRollback with it changes nothing; no token or a
// wrong one is Unauthenticated. The operator token admits to the
// Coordinator service too, and the health service needs no token.
func TestRoles(t *testing.T) {
	srv := tctest.Start(t, tctest.WithBadger(), tctest.WithConfig(func(c *tc.Config) { // Badger: Backup works
		c.Token, c.OperatorToken = "participant", "operator"
	}))
	ctx := callCtx(t)
	participant := dialWith(t, srv.Addr(), protocol.WithToken("participant"))
	operator := dialWith(t, srv.Addr(), protocol.WithToken("operator"))
	wrong := dialWith(t, srv.Addr(), protocol.WithToken("guess"))
	none := dialWith(t, srv.Addr())

	began, err := xactpb.NewCoordinatorClient(participant).Begin(ctx, &xactpb.BeginRequest{TimeoutMs: 600000})
	if err != nil {
		t.Fatalf("Begin with the participant token: %v", err)
	}
	xid := began.GetXid()

	type call struct {
		name string
		do   func(conn *grpc.ClientConn) error
	}
	coordinatorCalls := []call{
		{"Begin", func(conn *grpc.ClientConn) error {
			_, err := xactpb.NewCoordinatorClient(conn).Begin(ctx, &xactpb.BeginRequest{TimeoutMs: 600000})
			return err
		}},
		{"GetStatus", func(conn *grpc.ClientConn) error {
			_, err := xactpb.NewCoordinatorClient(conn).GetStatus(ctx, &xactpb.GetStatusRequest{Xid: xid})
			return err
		}},
		{"Attach", func(conn *grpc.ClientConn) error {
			sctx, cancel := context.WithCancel(ctx)
			defer cancel()
			stream, err := xactpb.NewCoordinatorClient(conn).Attach(sctx)
			if err != nil {
				return err
			}
			if err := stream.Send(&xactpb.RMMessage{Body: &xactpb.RMMessage_Hello{Hello: &xactpb.Hello{ClientId: "auth-test", ResourceIds: []string{"db"}}}}); err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			_, err = stream.Recv() // the Welcome, or the refusal
			return err
		}},
	}
	adminCalls := []call{
		{"ListGlobals", func(conn *grpc.ClientConn) error {
			_, err := xactpb.NewAdminClient(conn).ListGlobals(ctx, &xactpb.ListGlobalsRequest{})
			return err
		}},
		{"ForceRollback", func(conn *grpc.ClientConn) error {
			_, err := xactpb.NewAdminClient(conn).ForceRollback(ctx, &xactpb.ForceRequest{Xid: xid})
			return err
		}},
		{"Backup", func(conn *grpc.ClientConn) error {
			stream, err := xactpb.NewAdminClient(conn).Backup(ctx, &xactpb.BackupRequest{})
			if err != nil {
				return err
			}
			_, err = stream.Recv()
			return err
		}},
	}
	check := func(who string, conn *grpc.ClientConn, calls []call, want codes.Code, msg string) {
		t.Helper()
		for _, c := range calls {
			err := c.do(conn)
			if status.Code(err) != want || (err != nil && !strings.Contains(err.Error(), msg)) {
				t.Errorf("%s with %s = %v; want %v with %q", c.name, who, err, want, msg)
			}
		}
	}
	check("the participant token", participant, coordinatorCalls, codes.OK, "")
	check("the operator token", operator, coordinatorCalls, codes.OK, "")
	check("a wrong token", wrong, coordinatorCalls, codes.Unauthenticated, "not one this coordinator accepts")
	check("no token", none, coordinatorCalls, codes.Unauthenticated, "needs a bearer token")
	check("the participant token", participant, adminCalls, codes.PermissionDenied, "operator token")
	check("a wrong token", wrong, adminCalls, codes.Unauthenticated, "unauthenticated")
	check("no token", none, adminCalls, codes.Unauthenticated, "unauthenticated")

	// The refused ForceRollback left the global as it was.
	st, err := xactpb.NewCoordinatorClient(participant).GetStatus(ctx, &xactpb.GetStatusRequest{Xid: xid})
	if err != nil || st.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN {
		t.Fatalf("after a participant's ForceRollback: GetStatus = %v, %v; want BEGIN", st, err)
	}
	// The client gets the sentinel back, and a refused call is a definite
	// answer, not an unknown to retry.
	for _, c := range adminCalls {
		err := protocol.FromStatus(c.do(participant))
		if !errors.Is(err, protocol.ErrPermissionDenied) || protocol.Retryable(err) {
			t.Errorf("%s with the participant token = %v (Retryable %v); want ErrPermissionDenied, not retryable", c.name, err, protocol.Retryable(err))
		}
	}

	hc, err := healthpb.NewHealthClient(none).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health check without a token = %v, %v; want SERVING", hc, err)
	}

	// The operator's ForceRollback (last: it ends the global).
	check("the operator token", operator, adminCalls, codes.OK, "")
	st, err = xactpb.NewCoordinatorClient(operator).GetStatus(ctx, &xactpb.GetStatusRequest{Xid: xid})
	if err != nil || st.GetStatus() == xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN {
		t.Errorf("after the operator's ForceRollback: GetStatus = %v, %v; want it rolled back", st, err)
	}
}

// TestOneToken: without an operator token, Token admits to everything, as
// before there were roles; with only an operator token, the Coordinator
// service is open and the Admin service is the operator's.
func TestOneToken(t *testing.T) {
	tests := []struct {
		name              string
		token, operator   string
		conn              string // the token the client sends
		wantCoord, wantAd codes.Code
	}{
		{"Token only, with it", "s3cret", "", "s3cret", codes.OK, codes.OK},
		{"Token only, without", "s3cret", "", "", codes.Unauthenticated, codes.Unauthenticated},
		{"OperatorToken only, without", "", "op", "", codes.OK, codes.Unauthenticated},
		{"OperatorToken only, with it", "", "op", "op", codes.OK, codes.OK},
		{"no token", "", "", "", codes.OK, codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tctest.Start(t, tctest.WithConfig(func(c *tc.Config) { c.Token, c.OperatorToken = tt.token, tt.operator }))
			ctx := callCtx(t)
			var opts []grpc.DialOption
			if tt.conn != "" {
				opts = append(opts, protocol.WithToken(tt.conn))
			}
			conn := dialWith(t, srv.Addr(), opts...)
			_, err := xactpb.NewCoordinatorClient(conn).Begin(ctx, &xactpb.BeginRequest{TimeoutMs: 60000})
			if status.Code(err) != tt.wantCoord {
				t.Errorf("Begin = %v, want %v", err, tt.wantCoord)
			}
			_, err = xactpb.NewAdminClient(conn).ListGlobals(ctx, &xactpb.ListGlobalsRequest{})
			if status.Code(err) != tt.wantAd {
				t.Errorf("ListGlobals = %v, want %v", err, tt.wantAd)
			}
		})
	}
}

// TestTLSFileErrors: a TLS file the server cannot use stops New with a
// *tc.ConfigError that names the field and the file, before anything is
// opened or bound.
func TestTLSFileErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "xact test CA")
	cert, key := ca.Server(t)
	_, otherKey := ca.Server(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name             string
		cert, key, ca    string
		field, file, why string
	}{
		{"missing certificate", missing, key, "", "TLSCertFile", missing, "no such file"},
		{"certificate is a directory", dir, key, "", "TLSCertFile", dir, "is a directory"},
		{"certificate is not PEM", notPEM, key, "", "TLSCertFile", notPEM, "must hold a PEM certificate"},
		{"key given as certificate", key, cert, "", "TLSCertFile", key, "must hold a PEM certificate"},
		{"missing key", cert, missing, "", "TLSKeyFile", missing, "no such file"},
		{"key is not PEM", cert, notPEM, "", "TLSKeyFile", notPEM, "must hold the PEM private key of TLSCertFile"},
		{"key of another certificate", cert, otherKey, "", "TLSKeyFile", otherKey, "private key does not match public key"},
		{"missing client CA", cert, key, missing, "ClientCAFile", missing, "no such file"},
		{"client CA without certificates", cert, key, notPEM, "ClientCAFile", notPEM, "must hold at least one PEM certificate"},
	}
	for _, tt := range tests {
		cfg := tctest.Config()
		cfg.DataDir = filepath.Join(t.TempDir(), "data")
		cfg.TLSCertFile, cfg.TLSKeyFile, cfg.ClientCAFile = tt.cert, tt.key, tt.ca
		srv, err := tc.New(cfg)
		if err == nil {
			srv.Close()
			t.Errorf("%s: New() = nil error, want one", tt.name)
			continue
		}
		var ce *tc.ConfigError
		if !errors.As(err, &ce) || ce.Field != tt.field || !strings.Contains(err.Error(), tt.file) || !strings.Contains(err.Error(), tt.why) {
			t.Errorf("%s: New() = %v; want a *tc.ConfigError of %s naming %s, saying %q", tt.name, err, tt.field, tt.file, tt.why)
		}
		if tt.why == "no such file" && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: errors.Is(%v, fs.ErrNotExist) = false", tt.name, err)
		}
		if _, err := os.Stat(cfg.DataDir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: New opened the store before refusing the TLS files (stat: %v)", tt.name, err)
		}
	}
}

// TestSecurityConfigValidate: settings that cannot work together are
// Validate's errors, and none shows a token.
func TestSecurityConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*tc.Config)
		want string
	}{
		{"certificate without key", func(c *tc.Config) { c.TLSCertFile = "c.pem" }, `tc: TLSKeyFile must be set with TLSCertFile ("c.pem"), got ""`},
		{"key without certificate", func(c *tc.Config) { c.TLSKeyFile = "k.pem" }, `tc: TLSCertFile must be set with TLSKeyFile ("k.pem"), got ""`},
		{"client CA without TLS", func(c *tc.Config) { c.ClientCAFile = "ca.pem" }, `tc: ClientCAFile needs TLSCertFile (""), got "ca.pem"`},
		{"one token for both roles", func(c *tc.Config) { c.Token, c.OperatorToken = "same-s3cret", "same-s3cret" }, "tc: OperatorToken must differ from Token"},
		{"token with a newline", func(c *tc.Config) { c.Token = "s3cret\n" }, "tc: Token must be printable ASCII without spaces or line breaks"},
		{"operator token with a space", func(c *tc.Config) { c.OperatorToken = "op s3cret" }, "tc: OperatorToken must be printable ASCII without spaces or line breaks"},
	}
	for _, tt := range tests {
		cfg := tc.DefaultConfig()
		tt.mod(&cfg)
		err := cfg.Validate()
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: Validate() = %v, want %q", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: Validate() shows the token: %v", tt.name, err)
		}
	}
}
