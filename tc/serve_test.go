package tc_test

import (
	"context"
	"testing"

	"github.com/xact-io/xact/tc"
)

// TestServeStoppedBeforeRecovery: a server stopped (its context done) while
// it recovers, as by a SIGTERM right after start, stops cleanly: Serve
// returns nil, and its store is closed (a new server can open the data
// directory).
func TestServeStoppedBeforeRecovery(t *testing.T) {
	cfg := tc.DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	srv, err := tc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := srv.Serve(ctx); err != nil {
		t.Errorf("Serve(done ctx) = %v, want nil", err)
	}
	again, err := tc.New(cfg)
	if err != nil {
		t.Fatalf("New after the stop = %v, want the data directory free", err)
	}
	again.Close()
}
