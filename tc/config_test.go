package tc_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xact-io/xact/tc"
)

// TestConfigErrorNamesFields: each problem Validate finds is a
// *tc.ConfigError, so that a program that sets the fields from its own
// settings (xact server: flags) can name those instead.
func TestConfigErrorNamesFields(t *testing.T) {
	cfg := tc.DefaultConfig()
	cfg.DefaultTimeout = -5 * time.Second
	cfg.RetryBase, cfg.RetryMax = time.Minute, time.Second
	err := cfg.Validate()
	var ce *tc.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("Validate() = %v, want a *tc.ConfigError", err)
	}
	if got, want := err.Error(), "tc: DefaultTimeout must be positive, got -5s\ntc: RetryBase must not exceed RetryMax (1s), got 1m0s"; got != want {
		t.Errorf("Validate() = %q, want %q", got, want)
	}
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		if errors.As(e, &ce) {
			got = append(got, ce.Format(func(f string) string { return "--" + strings.ToLower(f) }))
		}
	}
	want := []string{"--defaulttimeout must be positive, got -5s", "--retrybase must not exceed --retrymax (1s), got 1m0s"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Format = %q, want %q", got, want)
	}
}
