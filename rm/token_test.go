package rm_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/tc"
	"github.com/xact-io/xact/tc/tctest"
	"github.com/xact-io/xact/tm"
)

// TestStartWithToken: a TC that requires a token welcomes an RM whose
// connection carries it (protocol.WithToken), and refuses one with a wrong
// token or none: Start says "unauthenticated" at once rather than waiting
// out its context.
func TestStartWithToken(t *testing.T) {
	srv := tctest.Start(t, tctest.WithConfig(func(c *tc.Config) { c.Token = "s3cret" }))
	dial := func(opts ...grpc.DialOption) *grpc.ClientConn {
		opts = append(append(protocol.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials())), opts...)
		conn, err := grpc.NewClient(srv.Addr(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	tests := []struct {
		name string
		opts []grpc.DialOption
		want error
	}{
		{"right token", []grpc.DialOption{protocol.WithToken("s3cret")}, nil},
		{"wrong token", []grpc.DialOption{protocol.WithToken("guess")}, protocol.ErrUnauthenticated},
		{"no token", nil, protocol.ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := dial(tt.opts...)
			c := rm.New(conn)
			defer c.Close()
			if err := c.Serve("db", at, newLedger()); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := c.Start(ctx)
			if !errors.Is(err, tt.want) || (err != nil && !strings.Contains(err.Error(), "unauthenticated")) {
				t.Fatalf("Start() = %v, want %v", err, tt.want)
			}
			if ctx.Err() != nil {
				t.Errorf("Start waited out its context: %v", ctx.Err())
			}
			// The TM's calls on the same connection: allowed with the
			// token, refused without.
			_, _, err = tm.New(conn).Begin(ctx, "t", time.Minute)
			if !errors.Is(err, tt.want) {
				t.Errorf("Begin() = %v, want %v", err, tt.want)
			}
		})
	}
}
