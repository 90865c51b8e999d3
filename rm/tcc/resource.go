package tcc

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/xact-io/xact/internal/failpoint"
	"github.com/xact-io/xact/internal/global"
	"github.com/xact-io/xact/internal/tracing"
	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/rm/fence"
)

// Funcs are the three functions of a TCC participant without a fence.
// Req is the request Try is called with; it is stored as JSON with the TC
// (the branch's action context) and decoded again for Confirm and Cancel,
// possibly in another process, so it must survive a JSON round trip.
//
// Confirm and Cancel run in phase two, outside the global transaction:
// their ctx carries the branch (BranchFrom) but no XID (tm.XID), so that
// nothing they call joins a transaction that is being decided.
//
// Without a fence the functions must give their own guarantees: Confirm
// and Cancel may be called more than once; Cancel may be called for a Try
// that never ran or has not run yet; and a Try may arrive after its
// Cancel. Use RegisterFenced for participants on a database.
type Funcs[Req any] struct {
	// Try reserves resources. Required.
	Try func(ctx context.Context, req Req) error
	// Confirm makes the reservation final. Nil: nothing to do.
	Confirm func(ctx context.Context, req Req) error
	// Cancel releases the reservation. try is TryFailed when the Try
	// returned an error (as recorded with the TC) and TryUnknown
	// otherwise. Nil: nothing to do.
	Cancel func(ctx context.Context, req Req, try TryOutcome) error
}

// FencedFuncs are the three functions of a TCC participant whose work is
// in one database: each runs inside a local transaction that the fence
// also writes its record in (see fence.Fence), and must do its work
// through tx (not commit or roll it back). The fence makes Confirm and
// Cancel run at most once each per branch, skips Cancel when no Try
// arrived, and refuses a Try that arrives after its Cancel.
type FencedFuncs[Req any] struct {
	// Try reserves resources through tx. Required.
	Try func(ctx context.Context, tx *sql.Tx, req Req) error
	// Confirm makes the reservation final through tx. Nil: nothing to do.
	Confirm func(ctx context.Context, tx *sql.Tx, req Req) error
	// Cancel releases the reservation through tx. try is TryDone when the
	// Try committed, and TryFailed when it returned an error: its
	// transaction was rolled back, so only what it did outside the
	// database (calls to other services) may need undoing, and a Cancel
	// that only touches the database should return nil. Nil: nothing to
	// do.
	Cancel func(ctx context.Context, tx *sql.Tx, req Req, try TryOutcome) error
}

// Resource is a TCC participant registered with an rm.Client. Its Try
// joins the global transaction in the context; the TC later calls its
// Confirm or Cancel through the rm.Client's stream.
type Resource[Req any] struct {
	name string
	rm   *rm.Client
	try  func(ctx context.Context, b Branch, req Req) error
	h    rm.Handler // what rm runs in phase two; tests call it directly
	// tracer makes the Try's span, from rm's tracer provider.
	tracer tracing.Tracer

	// afterRegister, when set (by tests), runs between the branch's
	// registration and the Try.
	afterRegister func(ctx context.Context, b Branch)
}

// Register declares a TCC resource named name on rmc: rmc runs its Confirm
// and Cancel for branches of BRANCH_TYPE_TCC on name. Register it in every
// process that may run phase two for it, with the same name and Req type,
// before rmc.Start (or after: the TC learns of it at once). Registering a
// name again on the same rm.Client replaces the functions.
func Register[Req any](rmc *rm.Client, name string, f Funcs[Req]) (*Resource[Req], error) {
	if f.Try == nil {
		return nil, fmt.Errorf("tcc: register %s: nil Try: %w", name, ErrInvalidArgument)
	}
	h := &handler[Req]{
		name: name,
		confirm: func(ctx context.Context, _ Branch, _ envelope, req Req) error {
			if f.Confirm == nil {
				return nil
			}
			return f.Confirm(ctx, req)
		},
		cancel: func(ctx context.Context, _ Branch, env envelope, req Req) error {
			if f.Cancel == nil {
				return nil
			}
			o := TryUnknown
			if env.TryFailed {
				o = TryFailed
			}
			return f.Cancel(ctx, req, o)
		},
	}
	try := func(ctx context.Context, _ Branch, req Req) error { return f.Try(ctx, req) }
	return register(rmc, name, try, h)
}

// RegisterFenced declares a TCC resource named name on rmc whose functions
// run under the fence fc (see FencedFuncs and fence.Fence). The fence's
// database must be the one the functions work in.
func RegisterFenced[Req any](rmc *rm.Client, name string, fc *fence.Fence, f FencedFuncs[Req]) (*Resource[Req], error) {
	if fc == nil {
		return nil, fmt.Errorf("tcc: register %s: nil fence: %w", name, ErrInvalidArgument)
	}
	if f.Try == nil {
		return nil, fmt.Errorf("tcc: register %s: nil Try: %w", name, ErrInvalidArgument)
	}
	h := &handler[Req]{
		name: name,
		confirm: func(ctx context.Context, b Branch, _ envelope, req Req) error {
			var confirm func(context.Context, *sql.Tx) error
			if f.Confirm != nil {
				confirm = func(ctx context.Context, tx *sql.Tx) error { return f.Confirm(ctx, tx, req) }
			}
			return fc.Confirm(ctx, b, confirm)
		},
		cancel: func(ctx context.Context, b Branch, _ envelope, req Req) error {
			// The fence, not the action context, knows how the Try ended.
			return fc.Cancel(ctx, b, func(ctx context.Context, tx *sql.Tx, o TryOutcome) error {
				if f.Cancel == nil {
					return nil
				}
				return f.Cancel(ctx, tx, req, o)
			})
		},
	}
	try := func(ctx context.Context, b Branch, req Req) error {
		var cancelFailed func(context.Context, *sql.Tx) error
		if f.Cancel != nil {
			cancelFailed = func(ctx context.Context, tx *sql.Tx) error { return f.Cancel(ctx, tx, req, TryFailed) }
		}
		return fc.Try(ctx, b, func(ctx context.Context, tx *sql.Tx) error { return f.Try(ctx, tx, req) }, cancelFailed)
	}
	return register(rmc, name, try, h)
}

func register[Req any](rmc *rm.Client, name string, try func(context.Context, Branch, Req) error, h *handler[Req]) (*Resource[Req], error) {
	if rmc == nil {
		return nil, fmt.Errorf("tcc: register %s: nil rm.Client: %w", name, ErrInvalidArgument)
	}
	if err := validResource(name); err != nil {
		return nil, fmt.Errorf("tcc: register: %w", err)
	}
	if err := rmc.Serve(name, xactpb.BranchType_BRANCH_TYPE_TCC, h); err != nil {
		return nil, fmt.Errorf("tcc: register %s: %w", name, err)
	}
	return &Resource[Req]{name: name, rm: rmc, try: try, h: h, tracer: tracing.NewTracer(rmc.TracerProvider(), scope)}, nil
}

// Name returns the resource's name, its resource id at the TC.
func (r *Resource[Req]) Name() string { return r.name }

// reportTimeout bounds the report of a failed Try.
const reportTimeout = 5 * time.Second

// Try runs the first phase for req in the global transaction of ctx
// (tm.XID): it registers a TCC branch on the resource with req as its
// action context, then calls the Try function with ctx carrying the branch
// (BranchFrom). If Try fails, the failure is reported to the TC
// (BRANCH_STATUS_PHASE_ONE_FAILED, so that the global transaction cannot
// commit) and returned; the caller's tm.Do then rolls back, and the TC
// calls Cancel with TryFailed.
//
// Without a global transaction in ctx, Try fails with tm.ErrNoTransaction
// and calls nothing.
//
// Try's span, "xact.tcc.try", holds the registration, the Try function
// (its context carries the span) and the report of a failure.
func (r *Resource[Req]) Try(ctx context.Context, req Req) (err error) {
	xid, ok := global.XID(ctx)
	if !ok {
		return fmt.Errorf("tcc: try %s: %w", r.name, global.ErrNoTransaction)
	}
	ctx, span := startTry(r.tracer, ctx, xid, r.name)
	defer func() { tracing.End(span, err) }()
	raw, data, err := encodeRequest(req)
	if err != nil {
		return fmt.Errorf("tcc: try %s: %w", r.name, err)
	}
	id, err := r.rm.RegisterBranch(ctx, xid, r.name, xactpb.BranchType_BRANCH_TYPE_TCC, nil, data)
	if err != nil {
		return fmt.Errorf("tcc: try %s: %w", r.name, err)
	}
	setBranch(span, id)
	b := Branch{XID: xid, BranchID: id, Resource: r.name}
	if r.afterRegister != nil {
		r.afterRegister(ctx, b)
	}
	afterRegister()
	tryErr := r.try(WithBranch(ctx, b), b, req)
	if tryErr == nil {
		return nil
	}
	tryErr = fmt.Errorf("tcc: try %v: %w", b, tryErr)
	if err := r.reportFailed(ctx, b, raw, tryErr); err != nil {
		return errors.Join(tryErr, err)
	}
	return tryErr
}

// afterRegister is the crash point between a Try's registration and its
// business Try. It is not in the generic Try itself: the compiler lets a
// package that instantiates Try inline failpoint.Hit only if this package
// inlined Hit somewhere, and without that a default build would keep a
// real call to Hit (internal/failpoint's TestDefaultBuildHasNone).
func afterRegister() { failpoint.Hit("tcc/try/after-register") }

// reportFailed tells the TC that the Try of b failed, with the action
// context rewritten to say so. It runs even if ctx has ended (the Try may
// have failed because it did). A global that already left Begin (it is
// being rolled back) needs no report.
func (r *Resource[Req]) reportFailed(ctx context.Context, b Branch, raw json.RawMessage, tryErr error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reportTimeout)
	defer cancel()
	err := r.rm.ReportBranch(ctx, b.XID, b.BranchID, xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_FAILED, failedEnvelope(raw, tryErr))
	if err == nil || errors.Is(err, protocol.ErrNotBegin) || errors.Is(err, protocol.ErrTimedOut) || errors.Is(err, protocol.ErrNotFound) {
		return nil
	}
	return err
}

// handler runs phase two of one resource for the rm.Client.
type handler[Req any] struct {
	name    string
	confirm func(ctx context.Context, b Branch, env envelope, req Req) error
	cancel  func(ctx context.Context, b Branch, env envelope, req Req) error
}

var _ rm.Handler = (*handler[struct{}])(nil)

// Commit runs the resource's Confirm for the branch of a.
func (h *handler[Req]) Commit(ctx context.Context, a rm.Action) error {
	return h.run(ctx, a, "confirm", h.confirm)
}

// Rollback runs the resource's Cancel for the branch of a.
func (h *handler[Req]) Rollback(ctx context.Context, a rm.Action) error {
	return h.run(ctx, a, "cancel", h.cancel)
}

func (h *handler[Req]) run(ctx context.Context, a rm.Action, what string, fn func(context.Context, Branch, envelope, Req) error) error {
	env, req, err := decodeEnvelope[Req](a.Resource, a.AppData)
	if err != nil {
		return err
	}
	b := Branch{XID: a.XID, BranchID: a.BranchID, Resource: a.Resource}
	if err := fn(WithBranch(ctx, b), b, env, req); err != nil {
		return fmt.Errorf("tcc: %s %v: %w", what, b, err)
	}
	return nil
}
