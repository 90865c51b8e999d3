package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestClientUsage: the overview and xact store's help name the flags that
// reach a secured coordinator, and say where tokens belong; --http-addr's
// help says what guards the console and /metrics.
func TestClientUsage(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"help"}, []string{"--tls ", "--tls-ca FILE", "--tls-cert FILE --tls-key FILE", "--tls-server-name NAME",
			"--operator-token", "XACT_OPERATOR_TOKEN", "XACT_TOKEN", "store backup --server"}},
		{[]string{"store", "help"}, []string{"--tls-ca FILE", "--tls-cert FILE", "--operator-token", "XACT_TLS_CA"}},
		{[]string{"server", "--help"}, []string{"/ui/", "--operator-token, /ui/ needs a login", "/healthz and /readyz are always open"}},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tt.args, &stdout, &stderr)
		out := stdout.String() + stderr.String()
		for _, w := range tt.want {
			if code != 0 || !strings.Contains(out, w) {
				t.Errorf("xact %v = %d, output does not contain %q:\n%s", tt.args, code, w, out)
			}
		}
	}
}
