package tm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xact-io/xact/internal/global"
	"github.com/xact-io/xact/internal/tracing"
	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
)

// Propagation says how Do relates to a global transaction that its context
// may already carry. The names and meanings are Seata's.
type Propagation int

const (
	// Required joins the global transaction in the context, or begins one
	// if there is none. The default.
	Required Propagation = iota
	// RequiresNew always begins a new global transaction; the outer one, if
	// any, is suspended: fn's context carries only the new XID, and the
	// outer XID is back in force when Do returns.
	RequiresNew
	// NotSupported runs fn outside any global transaction (WithoutXID).
	NotSupported
	// Supports joins the global transaction in the context if there is
	// one, and otherwise runs fn without one.
	Supports
	// Never runs fn without a global transaction, and fails with
	// ErrTransactionExists if the context carries one.
	Never
	// Mandatory joins the global transaction in the context, and fails
	// with ErrNoTransaction if there is none.
	Mandatory
)

var propagationNames = [...]string{"Required", "RequiresNew", "NotSupported", "Supports", "Never", "Mandatory"}

// String returns the Seata name of p.
func (p Propagation) String() string {
	if p >= 0 && int(p) < len(propagationNames) {
		return propagationNames[p]
	}
	return fmt.Sprintf("Propagation(%d)", int(p))
}

// Options configures one Do call.
type Options struct {
	// Name labels the global transaction in the TC's admin views.
	Name string
	// Timeout after which the TC rolls back a global transaction that Do
	// began (0: the Manager's default). When it is known, fn's context
	// carries the same deadline, so that work the TC will roll back anyway
	// stops early.
	Timeout time.Duration
	// Propagation relates the call to a global transaction already in the
	// context (default Required).
	Propagation Propagation
}

// Do runs fn inside a global transaction, as chosen by opts.Propagation.
//
// When Do begins the global transaction (it is the initiator), it commits
// when fn returns nil, and rolls back when fn returns an error or panics
// (the panic then continues, with its original stack, after the rollback).
// Only the initiator ends a transaction: when Do joins one that is already
// in the context, it returns fn's error to its caller, whose own Do decides.
//
// When Do is the initiator, its error tells the outcome, in this order:
//
//   - nil: committed (the commit decision is durable).
//   - errors.Is(err, ErrUnknownOutcome): Do could not learn the outcome
//     (the TC was unreachable for the whole decision timeout, or answered
//     no decision); the transaction may commit or roll back. Never assume
//     either: ask later with Status, or see `xact tx show XID`. The error
//     is an *OutcomeError; if fn failed, its error is only behind
//     BusinessErr, not in the chain, so errors.Is(err, fnErr) is false.
//   - errors.Is(err, ErrCommitted): fn failed, but the transaction was
//     committed by someone else (an operator) before Do's rollback; also
//     an *OutcomeError with fn's error behind BusinessErr.
//   - otherwise nothing was kept: fn's error, as is, after a rollback whose
//     decision is durable; an error wrapping ErrRolledBack when fn
//     succeeded but the decision was rollback (it timed out, a branch
//     failed); or Begin's error, fn not run.
//
// Check ErrUnknownOutcome before fn's own errors. (An fn error that itself
// wraps ErrUnknownOutcome, such as an inner RequiresNew Do's, matches too;
// errors.As with *OutcomeError and its XID tell whose outcome it is.)
//
// fn's return value decides, not its context: a caller whose context is
// cancelled after fn returned nil still gets a commit.
func (m *Manager) Do(ctx context.Context, opts Options, fn func(ctx context.Context) error) error {
	if err := m.Err(); err != nil {
		return err
	}
	if opts.Timeout < 0 {
		return fmt.Errorf("%w: Options.Timeout %v is negative", ErrInvalidOption, opts.Timeout)
	}
	xid, inTx := XID(ctx)
	switch opts.Propagation {
	case Required:
		if inTx {
			return fn(ctx)
		}
		return m.initiate(ctx, opts, fn)
	case RequiresNew:
		return m.initiate(ctx, opts, fn)
	case NotSupported:
		return fn(WithoutXID(ctx))
	case Supports:
		return fn(ctx)
	case Never:
		if inTx {
			return fmt.Errorf("tm: propagation Never: %w (%s)", ErrTransactionExists, xid)
		}
		return fn(ctx)
	case Mandatory:
		if !inTx {
			return fmt.Errorf("tm: propagation Mandatory: %w", ErrNoTransaction)
		}
		return fn(ctx)
	default:
		return fmt.Errorf("%w: unknown %v", ErrInvalidOption, opts.Propagation)
	}
}

// initiate begins a global transaction, runs fn in it and ends it, inside
// the transaction's root span (trace.go).
func (m *Manager) initiate(ctx context.Context, opts Options, fn func(ctx context.Context) error) (err error) {
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = m.cfg.defaultTimeout
	}
	ctx, span := m.startGlobal(ctx, opts.Name)
	// A panic or runtime.Goexit in fn skips the normal path below; the
	// deferred rollback runs without recovering, so the panic keeps its
	// stack. The decision RPC is detached from ctx (see decide).
	returned := false
	defer func() {
		if !returned {
			panicked(span)
		}
		tracing.End(span, err)
	}()
	txCtx, xid, lazy, err := m.begin(ctx, opts.Name, timeout)
	if err != nil {
		returned = true
		return err
	}
	setXID(span, xid)
	log := m.cfg.log.With("xid", xid)

	defer func() {
		if returned {
			return
		}
		if _, rbErr := m.end(ctx, txCtx, xid, lazy, false); rbErr != nil {
			log.ErrorContext(ctx, "tm: rollback after panic failed", "err", rbErr)
		} else {
			log.WarnContext(ctx, "tm: rolled back after panic")
		}
	}()

	fnErr := m.run(txCtx, timeout, fn)
	returned = true

	if fnErr != nil {
		if _, rbErr := m.end(ctx, txCtx, xid, lazy, false); rbErr != nil {
			// Not known to be rolled back: fn's error must not read as a
			// rollback (errors.Is(err, fnErr) stays false).
			return newOutcomeError(xid, rbErr, fnErr)
		}
		return fnErr
	}
	if _, err = m.end(ctx, txCtx, xid, lazy, true); err != nil && !errors.Is(err, ErrRolledBack) {
		return newOutcomeError(xid, err, nil)
	}
	return err
}

// begin begins Do's global transaction: lazily when the TC offers an XID
// namespace (see lazy.go), eagerly otherwise.
func (m *Manager) begin(ctx context.Context, name string, timeout time.Duration) (context.Context, string, *lazyTx, error) {
	xid, ok, carries, err := m.nextXID(ctx)
	if err != nil {
		return ctx, "", nil, err
	}
	if !ok {
		txCtx, xid, err := m.beginEager(ctx, name, timeout)
		return txCtx, xid, nil, err
	}
	l := &lazyTx{m: m, xid: xid, name: name}
	if timeout > 0 {
		l.deadline = time.Now().Add(timeout)
	}
	ctx = global.WithLazy(WithXID(ctx, xid), xid, l)
	if carries {
		// Phase-one reports may wait for the next request of the global;
		// end sends whatever is still waiting with the decision.
		ctx = global.WithReports(ctx, xid)
	}
	m.cfg.log.DebugContext(ctx, "global transaction begun lazily", "xid", xid, "name", name)
	return ctx, xid, l, nil
}

// end decides Do's global transaction, sending with the decision the
// phase-one reports still waiting in txCtx (fn's context). A lazily begun
// one the TC never heard of is decided without asking it: it has no
// branch.
func (m *Manager) end(ctx, txCtx context.Context, xid string, l *lazyTx, commit bool) (xactpb.GlobalStatus, error) {
	var begin *xactpb.BeginRequest
	reports := global.TakeReports(txCtx, xid)
	if l != nil {
		told, confirmed := l.end()
		if !told {
			switch {
			case !commit:
				return xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED, nil
			case !l.deadline.IsZero() && !time.Now().Before(l.deadline):
				// What the TC would answer: past its timeout, no commit.
				return xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACKED,
					fmt.Errorf("tm: commit %s: %w: %w", xid, ErrRolledBack, protocol.ErrTimedOut)
			}
			return xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED, nil
		}
		if !confirmed {
			// The TC may or may not have begun it: let the decision begin it
			// if not, so that a registration still in flight is refused.
			begin = l.beginRequest()
		}
	}
	if commit {
		return m.commit(ctx, xid, begin, reports)
	}
	return m.rollback(ctx, xid, begin, reports)
}

func (m *Manager) run(ctx context.Context, timeout time.Duration, fn func(context.Context) error) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return fn(ctx)
}
