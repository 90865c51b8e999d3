package tm

import (
	"context"

	"github.com/xact-io/xact/internal/global"
)

// The XID in a context lives in internal/global, which rm and datasource
// read without importing tm; the functions here are the names users call.

// WithXID returns a context that carries the global transaction id xid.
// Code running with this context takes part in that global transaction: the
// datasource wrapper turns local transactions into branches, TCC Try and
// saga steps register under it, and the gRPC and HTTP propagation helpers
// send it on.
func WithXID(ctx context.Context, xid string) context.Context {
	return global.WithXID(ctx, xid)
}

// XID returns the global transaction id carried by ctx, if any.
func XID(ctx context.Context) (string, bool) {
	return global.XID(ctx)
}

// WithoutXID returns a context that carries no global transaction (for
// NotSupported propagation and for local work inside a global).
func WithoutXID(ctx context.Context) context.Context {
	return global.WithoutXID(ctx)
}
