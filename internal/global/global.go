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
//
// It also carries, for a transaction tm.Do began, the queue of phase-one
// reports that wait to travel with the next request naming it
// (WithReports, DeferReport, TakeReports, ReturnReports).
package global

import (
	"context"
	"errors"
	"fmt"
	"sync"

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

// Reports waiting for the next request.
//
// A branch that succeeded may let its PHASE_ONE_DONE report wait, instead
// of sending a ReportBranch of its own, for the next request that names
// its global transaction: the next registration (rm.Client.RegisterBranch)
// or the decision (tm's Commit or Rollback), which carry it and make it
// durable with their own write. A saga step's report so costs no round
// trip. Only the process that will decide the transaction has a queue: its
// decision is sure to come, and to carry what is still waiting.

type reportsKey struct{}

type reportQueue struct {
	xid string
	mu  sync.Mutex
	rs  []*xactpb.ReportBranchRequest
}

// WithReports returns a context that carries an empty queue of reports
// waiting for the next request of the global transaction xid. Its owner
// must send what is left in it with its decision (TakeReports). A queue of
// an outer transaction is hidden.
func WithReports(ctx context.Context, xid string) context.Context {
	return context.WithValue(ctx, reportsKey{}, &reportQueue{xid: xid})
}

func queueOf(ctx context.Context, xid string) *reportQueue {
	q, _ := ctx.Value(reportsKey{}).(*reportQueue)
	if q == nil || q.xid != xid {
		return nil
	}
	return q
}

// DeferReport queues r to be sent with the next request of its global
// transaction, and reports whether it did: false when ctx carries no queue
// for r's XID (the caller must then send r itself, with ReportBranch).
// Only a report that may wait is to be deferred: a success, whose loss in
// a crash of this process leaves the branch as a crash before the report
// would have. A failure must be sent at once (I3).
func DeferReport(ctx context.Context, r *xactpb.ReportBranchRequest) bool {
	q := queueOf(ctx, r.GetXid())
	if q == nil {
		return false
	}
	q.mu.Lock()
	q.rs = append(q.rs, r)
	q.mu.Unlock()
	return true
}

// TakeReports empties the queue of xid in ctx and returns what it held,
// in the order it was deferred (nil if none, or no queue). A request that
// fails must give them back with ReturnReports, so that they go with the
// next one.
func TakeReports(ctx context.Context, xid string) []*xactpb.ReportBranchRequest {
	q := queueOf(ctx, xid)
	if q == nil {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	rs := q.rs
	q.rs = nil
	return rs
}

// ReturnReports puts rs, taken by TakeReports for a request that failed,
// back at the head of the queue of xid in ctx. (Sending one twice is
// harmless: the TC records a report as often as it gets it.)
func ReturnReports(ctx context.Context, xid string, rs []*xactpb.ReportBranchRequest) {
	q := queueOf(ctx, xid)
	if q == nil || len(rs) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.rs = append(rs[:len(rs):len(rs)], q.rs...)
}
