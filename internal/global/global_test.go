package global

import (
	"context"
	"errors"
	"testing"

	"github.com/xact-io/xact/protocol/xactpb"
)

func TestXID(t *testing.T) {
	bg := context.Background()
	if x, ok := XID(bg); ok || x != "" || ExplicitlyWithout(bg) {
		t.Errorf("XID(Background) = %q, %v; ExplicitlyWithout = %v; want none", x, ok, ExplicitlyWithout(bg))
	}
	ctx := WithXID(bg, "n:1")
	if x, ok := XID(ctx); !ok || x != "n:1" {
		t.Errorf("XID(WithXID(n:1)) = %q, %v, want n:1, true", x, ok)
	}
	ctx = WithoutXID(ctx)
	if x, ok := XID(ctx); ok || !ExplicitlyWithout(ctx) {
		t.Errorf("XID(WithoutXID) = %q, %v; ExplicitlyWithout = %v; want none, explicitly", x, ok, ExplicitlyWithout(ctx))
	}
}

func TestValidateXID(t *testing.T) {
	for _, tt := range []struct {
		xid string
		ok  bool
	}{{"n:1", true}, {"", false}, {"a b", false}, {string(make([]byte, 129)), false}} {
		err := ValidateXID(tt.xid)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidXID)) {
			t.Errorf("ValidateXID(%q) = %v, want ok %v (else ErrInvalidXID)", tt.xid, err, tt.ok)
		}
	}
}

type lazy struct{ req *xactpb.BeginRequest }

func (l lazy) PendingBegin() (*xactpb.BeginRequest, func(), error) { return l.req, func() {}, nil }

func TestPendingBegin(t *testing.T) {
	req := &xactpb.BeginRequest{Xid: "n:1"}
	ctx := WithLazy(WithXID(context.Background(), "n:1"), "n:1", lazy{req})
	if got, begun, err := PendingBegin(ctx, "n:1"); got != req || begun == nil || err != nil {
		t.Errorf("PendingBegin(n:1) = %v, %v, %v; want the lazy transaction's Begin", got, begun != nil, err)
	}
	// Another XID (a nested transaction, or one set by hand) has none.
	if got, begun, err := PendingBegin(WithXID(ctx, "n:2"), "n:2"); got != nil || begun != nil || err != nil {
		t.Errorf("PendingBegin(n:2) = %v, %v, %v; want nothing", got, begun != nil, err)
	}
	if got, _, _ := PendingBegin(context.Background(), "n:1"); got != nil {
		t.Errorf("PendingBegin without a lazy transaction = %v, want nil", got)
	}
}
