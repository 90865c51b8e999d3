package tm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/tc"
	"github.com/xact-io/xact/tc/tctest"
	"github.com/xact-io/xact/tm"
)

// TestDialWithToken: a Manager made with Dial reaches a TC that requires a
// token when given protocol.WithToken, as the README shows, and gets
// ErrUnauthenticated without it.
func TestDialWithToken(t *testing.T) {
	srv := tctest.Start(t, tctest.WithConfig(func(c *tc.Config) { c.Token = "s3cret" }))
	for _, tt := range []struct {
		name string
		opts []tm.Option
		want error
	}{
		{"token", []tm.Option{tm.WithDialOptions(protocol.WithToken("s3cret"))}, nil},
		{"no token", nil, protocol.ErrUnauthenticated},
	} {
		m, err := tm.Dial(srv.Addr(), tt.opts...)
		if err != nil {
			t.Fatalf("%s: Dial() = %v", tt.name, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _, err = m.Begin(ctx, "t", time.Minute)
		cancel()
		m.Close()
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: Begin() = %v, want %v", tt.name, err, tt.want)
		}
	}
}
