package protocol

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// ClientTLS is the dial option that connects to a TC serving TLS
// (tc.Config.TLSCertFile, `xact server --tls-cert --tls-key`):
//
//   - caFile is a PEM file of the CA certificates to trust for the TC's
//     certificate; empty trusts the system's (a certificate from a public
//     CA);
//   - certFile and keyFile (both or neither) are the PEM certificate and
//     key this client presents, for a TC that requires client
//     certificates (tc.Config.ClientCAFile, `--client-ca`: mutual TLS);
//   - serverName, when set, is the name the TC's certificate must hold,
//     in place of the host of the address dialed (an address by IP, or a
//     load balancer's name).
//
// A file that is missing, unreadable or holds no usable PEM is an error
// that names it. With the TM and the RM:
//
//	creds, err := protocol.ClientTLS("ca.pem", "client.pem", "client-key.pem", "")
//	if err != nil { ... }
//	m, err := tm.Dial(tcAddr, tm.WithDialOptions(creds, protocol.WithToken(token)))
//
//	opts := append(protocol.DialOptions(), creds, protocol.WithToken(token))
//	conn, err := grpc.NewClient(tcAddr, opts...)
//	c := rm.New(conn)
//
// It is grpc.WithTransportCredentials(credentials.NewTLS(cfg)) with cfg
// from ClientTLSConfig; use that to build your own.
func ClientTLS(caFile, certFile, keyFile, serverName string) (grpc.DialOption, error) {
	cfg, err := ClientTLSConfig(caFile, certFile, keyFile, serverName)
	if err != nil {
		return nil, err
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(cfg)), nil
}

// ClientTLSConfig is the TLS configuration of ClientTLS: TLS 1.2 or later,
// the TC's certificate checked against caFile's CAs (the system's if
// empty) and serverName (the dialed host if empty), and the client
// certificate of certFile and keyFile, if given.
func ClientTLSConfig(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("protocol: TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("protocol: TLS CA file %s holds no PEM certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case certFile == "" && keyFile == "":
	case certFile == "" || keyFile == "":
		return nil, fmt.Errorf("protocol: a TLS client certificate needs both its certificate file and its key file (got certificate %q, key %q)", certFile, keyFile)
	default:
		// Read each file here, so that an error names the one at fault
		// (tls.LoadX509KeyPair's do not).
		certPEM, err := os.ReadFile(certFile)
		if err != nil {
			return nil, fmt.Errorf("protocol: TLS client certificate: %w", err)
		}
		keyPEM, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("protocol: TLS client key: %w", err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("protocol: TLS client certificate %s and key %s: %w", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
