package protocol_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/xact-io/xact/internal/tlstest"
	"github.com/xact-io/xact/protocol"
)

// TestClientTLS: ClientTLS connects to a gRPC server with a certificate
// its CA file signed, presenting the client certificate a server that
// requires one checks, and checks the server's name (the dialed host, or
// serverName).
func TestClientTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "xact test CA")
	clients := tlstest.NewCA(t, "xact clients CA")
	certFile, keyFile := ca.Server(t)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	b, _ := os.ReadFile(clients.CAFile(t))
	pool.AppendCertsFromPEM(b)
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
	})))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	defer srv.Stop()
	clientCert, clientKey := clients.Client(t, "rm-1")

	tests := []struct {
		name       string
		serverName string
		cert, key  string
		want       string // in the error; "" for success
	}{
		{"CA, client certificate", "", clientCert, clientKey, ""},
		{"server name in the certificate", "localhost", clientCert, clientKey, ""},
		{"server name not in the certificate", "tc.example", clientCert, clientKey, "not tc.example"},
		{"no client certificate", "", "", "", "certificate required"},
	}
	for _, tt := range tests {
		opt, err := protocol.ClientTLS(ca.CAFile(t), tt.cert, tt.key, tt.serverName)
		if err != nil {
			t.Fatalf("%s: ClientTLS: %v", tt.name, err)
		}
		conn, err := grpc.NewClient(lis.Addr().String(), append(protocol.DialOptions(), opt)...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		conn.Close()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: Check = %v, want success", tt.name, err)
		case tt.want != "" && err == nil:
			t.Errorf("%s: Check succeeded, want an error containing %q", tt.name, tt.want)
		case tt.want != "" && !strings.Contains(err.Error(), tt.want) &&
			// TLS 1.3: the server's alert may lose the race with the
			// client's first write.
			!strings.Contains(err.Error(), "broken pipe") && !strings.Contains(err.Error(), "connection reset"):
			t.Errorf("%s: Check = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

// TestClientTLSConfigErrors: a file ClientTLSConfig cannot use is an error
// that names it.
func TestClientTLSConfigErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "xact test CA")
	cert, key := ca.Client(t, "c")
	_, otherKey := ca.Client(t, "d")
	missing := filepath.Join(t.TempDir(), "missing.pem")
	tests := []struct {
		name              string
		caFile, cert, key string
		want              string
	}{
		{"missing CA file", missing, "", "", missing},
		{"CA file without certificates", key, "", "", key + " holds no PEM certificate"},
		{"certificate without key", "", cert, "", "needs both"},
		{"key without certificate", "", "", key, "needs both"},
		{"missing certificate", "", missing, key, missing},
		{"missing key", "", cert, missing, missing},
		{"key of another certificate", "", cert, otherKey, otherKey},
	}
	for _, tt := range tests {
		_, err := protocol.ClientTLS(tt.caFile, tt.cert, tt.key, "")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: ClientTLS = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
	cfg, err := protocol.ClientTLSConfig("", "", "", "tc.example")
	if err != nil || cfg.RootCAs != nil || cfg.ServerName != "tc.example" || cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("ClientTLSConfig(no files) = %+v, %v; want the system's roots, the server name, TLS 1.2 or later", cfg, err)
	}
}
