package tm

import "context"

type xidKey struct{}

// WithXID returns a context that carries the global transaction id xid.
// Code running with this context takes part in that global transaction: the
// datasource wrapper turns local transactions into branches, TCC Try and
// saga steps register under it, and the gRPC and HTTP propagation helpers
// send it on.
func WithXID(ctx context.Context, xid string) context.Context {
	return context.WithValue(ctx, xidKey{}, xid)
}

// XID returns the global transaction id carried by ctx, if any.
func XID(ctx context.Context) (string, bool) {
	x, ok := ctx.Value(xidKey{}).(string)
	return x, ok && x != ""
}

// WithoutXID returns a context that carries no global transaction (for
// NotSupported propagation and for local work inside a global).
func WithoutXID(ctx context.Context) context.Context {
	return context.WithValue(ctx, xidKey{}, "")
}
