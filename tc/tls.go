package tc

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// TLS of the gRPC listener: Config.TLSCertFile, TLSKeyFile, ClientCAFile.
// The files are read once, by New; a renewed certificate takes effect at
// the next start.

// validateTLS checks the TLS fields against each other; the files are
// read by New (serverCredentials).
func (c *Config) validateTLS() []error {
	var errs []error
	switch {
	case c.TLSCertFile != "" && c.TLSKeyFile == "":
		errs = append(errs, &ConfigError{Field: "TLSKeyFile", Value: c.TLSKeyFile, Rule: "must be set with",
			Other: "TLSCertFile", OtherValue: c.TLSCertFile})
	case c.TLSCertFile == "" && c.TLSKeyFile != "":
		errs = append(errs, &ConfigError{Field: "TLSCertFile", Value: c.TLSCertFile, Rule: "must be set with",
			Other: "TLSKeyFile", OtherValue: c.TLSKeyFile})
	}
	if c.ClientCAFile != "" && c.TLSCertFile == "" {
		errs = append(errs, &ConfigError{Field: "ClientCAFile", Value: c.ClientCAFile, Rule: "needs",
			Other: "TLSCertFile", OtherValue: c.TLSCertFile})
	}
	return errs
}

// serverCredentials returns the transport credentials of the gRPC
// listener: TLS from the configured files, or none without TLSCertFile.
// A file it cannot use is a *ConfigError that names its field and the
// file, with the cause.
func (c *Config) serverCredentials() (credentials.TransportCredentials, error) {
	if c.TLSCertFile == "" {
		return insecure.NewCredentials(), nil
	}
	cfg, err := c.serverTLS()
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(cfg), nil
}

func (c *Config) serverTLS() (*tls.Config, error) {
	certPEM, err := os.ReadFile(c.TLSCertFile)
	if err != nil {
		return nil, &ConfigError{Field: "TLSCertFile", Value: c.TLSCertFile, Rule: "must name a readable file", Err: err}
	}
	if err := hasCertificate(certPEM); err != nil {
		return nil, &ConfigError{Field: "TLSCertFile", Value: c.TLSCertFile, Rule: "must hold a PEM certificate", Err: err}
	}
	keyPEM, err := os.ReadFile(c.TLSKeyFile)
	if err != nil {
		return nil, &ConfigError{Field: "TLSKeyFile", Value: c.TLSKeyFile, Rule: "must name a readable file", Err: err}
	}
	// The certificate parsed: what fails now is the key, or the pair.
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, &ConfigError{Field: "TLSKeyFile", Value: c.TLSKeyFile, Rule: "must hold the PEM private key of",
			Other: "TLSCertFile", OtherValue: c.TLSCertFile, Err: err}
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if c.ClientCAFile != "" {
		caPEM, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, &ConfigError{Field: "ClientCAFile", Value: c.ClientCAFile, Rule: "must name a readable file", Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, &ConfigError{Field: "ClientCAFile", Value: c.ClientCAFile, Rule: "must hold at least one PEM certificate"}
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// hasCertificate reports an error unless b holds a PEM CERTIFICATE block
// that parses, so that a key file given as the certificate, or a file
// that is not PEM, is reported as the certificate's problem and not as a
// mismatched pair.
func hasCertificate(b []byte) error {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return errors.New("no CERTIFICATE block in it")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		_, err := x509.ParseCertificate(block.Bytes)
		return err
	}
}
