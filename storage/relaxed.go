package storage

import "context"

type relaxedKey struct{}

// Relaxed returns a context under which a Store may acknowledge a change
// before it is durable. The change is still atomic, visible to every later
// read, and ordered: it becomes durable no later than the next change made
// without Relaxed (a durable store syncs its log in commit order). A crash
// may lose it.
//
// The TC uses it only where losing the change is harmless: a Begin (a global
// with no branch that vanishes is indistinguishable from one never begun;
// the first registration makes it durable), and the bookkeeping after a
// durable decision (finishing, per-branch progress, lock release), which
// recovery redoes, idempotently, from the durable decision.
func Relaxed(ctx context.Context) context.Context {
	return context.WithValue(ctx, relaxedKey{}, true)
}

// IsRelaxed reports whether ctx was made by Relaxed.
func IsRelaxed(ctx context.Context) bool {
	v, _ := ctx.Value(relaxedKey{}).(bool)
	return v
}
