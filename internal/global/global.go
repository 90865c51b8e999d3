// Package global carries a global transaction in a context: its XID and,
// for a transaction that tm.Do began lazily, the hook through which the
// first request naming it carries the Begin.
//
// It is the one place both sides of the client meet: tm makes such
// contexts (and re-exports the helpers users call: tm.WithXID, tm.XID,
// tm.WithoutXID, tm.ValidateXID, tm.PendingBegin), while rm, rm/tcc,
// rm/saga and datasource read them without importing tm.
//
//	ctx = global.WithXID(ctx, xid)
//	xid, ok := global.XID(ctx)                        // ok: ctx is in a global transaction
//	begin, begun, err := global.PendingBegin(ctx, xid) // send begin with the request; call begun after it succeeded
package global

import (
	"context"
	"errors"
	"fmt"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
)

// Errors users meet as tm.ErrInvalidXID and tm.ErrNoTransaction, hence
// their text.
var (
	// ErrInvalidXID: an XID is empty, too long or not printable ASCII.
	ErrInvalidXID = errors.New("tm: invalid XID")
	// ErrNoTransaction: the context carries no XID where one is needed.
	ErrNoTransaction = errors.New("tm: no global transaction in context")
)

// ValidateXID reports whether xid can be a global transaction id, by the
// rule the TC applies too (protocol.ValidateXID). The error wraps
// ErrInvalidXID.
func ValidateXID(xid string) error {
	if err := protocol.ValidateXID(xid); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidXID, err)
	}
	return nil
}

type xidKey struct{}

// WithXID returns a context that carries the global transaction id xid.
func WithXID(ctx context.Context, xid string) context.Context {
	return context.WithValue(ctx, xidKey{}, xid)
}

// XID returns the global transaction id carried by ctx, if any.
func XID(ctx context.Context) (string, bool) {
	x, ok := ctx.Value(xidKey{}).(string)
	return x, ok && x != ""
}

// WithoutXID returns a context that carries no global transaction, even
// if ctx did.
func WithoutXID(ctx context.Context) context.Context {
	return context.WithValue(ctx, xidKey{}, "")
}

// ExplicitlyWithout reports whether ctx was made by WithoutXID (as
// opposed to never having carried an XID): the propagation helpers then
// strip an XID that a caller put into outgoing metadata or headers by
// hand.
func ExplicitlyWithout(ctx context.Context) bool {
	x, ok := ctx.Value(xidKey{}).(string)
	return ok && x == ""
}

// Lazy is a global transaction that its TM named without asking the TC to
// begin it (tm.Do's lazy Begin): the TC begins it when a request naming
// it carries its Begin.
type Lazy interface {
	// PendingBegin returns the Begin that a request naming the
	// transaction must carry because the TC may not have begun it yet,
	// and a function to call once the TC has answered such a request
	// successfully; nil, nil, nil when the TC knows it. It fails once the
	// transaction was decided or timed out: no branch may join it then.
	PendingBegin() (begin *xactpb.BeginRequest, begun func(), err error)
}

type lazyKey struct{}

type lazyValue struct {
	xid string
	l   Lazy
}

// WithLazy returns a context that carries l as the lazily begun global
// transaction xid. It does not set the XID (see WithXID).
func WithLazy(ctx context.Context, xid string, l Lazy) context.Context {
	return context.WithValue(ctx, lazyKey{}, lazyValue{xid, l})
}

// LazyOf returns the lazily begun transaction xid that ctx carries, or
// nil: a context that carries another XID (a nested transaction, or one
// set by hand) has none for xid.
func LazyOf(ctx context.Context, xid string) Lazy {
	v, _ := ctx.Value(lazyKey{}).(lazyValue)
	if v.l == nil || v.xid != xid {
		return nil
	}
	return v.l
}

// PendingBegin returns, for the global transaction xid carried by ctx,
// what Lazy.PendingBegin returns; nil, nil, nil when ctx carries no lazily
// begun transaction xid (it was begun eagerly, or elsewhere).
func PendingBegin(ctx context.Context, xid string) (*xactpb.BeginRequest, func(), error) {
	l := LazyOf(ctx, xid)
	if l == nil {
		return nil, nil, nil
	}
	return l.PendingBegin()
}
