package tm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/xact-io/xact/internal/tracing"
	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
)

// Manager begins and ends global transactions on a TC. It is safe for
// concurrent use. A Manager made with New does not own its connection; one
// made with Dial does, and Close closes it.
type Manager struct {
	client xactpb.CoordinatorClient
	cfg    config
	tracer tracing.Tracer
	err    error     // a configuration error; every call returns it
	closer io.Closer // the connection Dial made, if any

	ns struct { // the XID namespace for lazy Begin (lazy.go)
		mu          sync.Mutex
		prefix      string
		seq         uint64
		unsupported bool
		carries     bool // the TC records reports carried by other requests
	}
}

// New returns a Manager that talks to the TC over conn. The connection may
// be shared with an rm.Client. New never fails: a bad option or a nil conn
// makes every call return an error wrapping ErrInvalidOption (see Err).
func New(conn grpc.ClientConnInterface, opts ...Option) *Manager {
	m := &Manager{cfg: defaultConfig()}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&m.cfg); err != nil && m.err == nil {
			m.err = fmt.Errorf("%w: %w", ErrInvalidOption, err)
		}
	}
	if conn == nil && m.err == nil {
		m.err = fmt.Errorf("%w: nil connection", ErrInvalidOption)
	}
	if conn != nil {
		m.client = xactpb.NewCoordinatorClient(conn)
	}
	m.tracer = tracing.NewTracer(m.cfg.tracerProvider, scope)
	return m
}

// Dial returns a Manager with its own client connection to the TC at addr
// ("host:port", or a list "tc-a:8091,tc-b:8091" of coordinators sharing
// one store, over which calls are balanced and fail over: protocol.Target),
// dialed with protocol.DialOptions (keepalive, a reconnect backoff of at
// most a second). Without WithDialOptions the connection
// uses no transport security (a TC on the same host or a trusted network);
// pass WithDialOptions(grpc.WithTransportCredentials(...)) otherwise, and
// WithDialOptions(protocol.WithToken(token)) for a TC that requires a
// token. The connection carries the Manager's RPC spans and W3C trace
// context (an otelgrpc stats handler; see WithTracerProvider). Close the
// Manager to close the connection.
func Dial(addr string, opts ...Option) (*Manager, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidOption, err)
		}
	}
	target, topts, err := protocol.Target(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOption, err)
	}
	dialOpts := append(protocol.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	dialOpts = append(dialOpts, topts...)
	dialOpts = append(dialOpts, grpc.WithStatsHandler(tracing.ClientHandler(cfg.tracerProvider)))
	dialOpts = append(dialOpts, cfg.dialOpts...)
	conn, err := grpc.NewClient(target, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("tm: dial %s: %w", addr, err)
	}
	m := New(conn, opts...)
	m.closer = conn
	return m, nil
}

// Err returns the configuration error that makes every call fail, or nil.
func (m *Manager) Err() error {
	if m.err == nil && m.client == nil {
		return fmt.Errorf("%w: zero Manager; use tm.New", ErrInvalidOption)
	}
	return m.err
}

// Close closes the connection if Dial made it; otherwise it does nothing.
func (m *Manager) Close() error {
	if m.closer == nil {
		return nil
	}
	return m.closer.Close()
}

// Begin starts a global transaction named name that the TC rolls back if it
// is not committed within timeout (0: the WithDefaultTimeout value, and if
// that is 0 too, the TC's default). It returns ctx carrying the new XID
// (see WithXID) and the XID.
//
// Begin is not retried after an ambiguous failure: a second call would
// start a second transaction. It does wait (within ctx and the RPC
// timeout) for a connection that is not ready yet, because a request that
// was never sent is safe to send.
//
// Begin's span, "xact.global NAME", covers the Begin call only: the
// Manager cannot know when a transaction it did not run ends (Do's span
// covers the whole transaction). The context returned carries it, so that
// the work, Commit and Rollback done with it join its trace.
func (m *Manager) Begin(ctx context.Context, name string, timeout time.Duration) (context.Context, string, error) {
	if err := m.Err(); err != nil {
		return ctx, "", err
	}
	sctx, span := m.startGlobal(ctx, name)
	txCtx, xid, err := m.beginEager(sctx, name, timeout)
	setXID(span, xid)
	tracing.End(span, err)
	if err != nil {
		return ctx, "", err
	}
	return txCtx, xid, nil
}

// beginEager asks the TC to begin a global transaction (Begin without its
// span).
func (m *Manager) beginEager(ctx context.Context, name string, timeout time.Duration) (context.Context, string, error) {
	if timeout < 0 {
		return ctx, "", fmt.Errorf("tm: begin %q: negative timeout %v: %w", name, timeout, protocol.ErrInvalidArgument)
	}
	if timeout == 0 {
		timeout = m.cfg.defaultTimeout
	}
	actx, cancel := context.WithTimeout(ctx, m.cfg.rpcTimeout)
	defer cancel()
	resp, err := m.client.Begin(tracing.Outgoing(actx), &xactpb.BeginRequest{Name: name, TimeoutMs: millis(timeout)}, grpc.WaitForReady(true))
	if err != nil {
		return ctx, "", fmt.Errorf("tm: begin %q: %w", name, protocol.FromStatus(err))
	}
	xid := resp.GetXid()
	if err := ValidateXID(xid); err != nil {
		return ctx, "", fmt.Errorf("tm: begin %q: TC answered a bad XID: %w", name, err)
	}
	m.cfg.log.DebugContext(ctx, "global transaction begun", "xid", xid, "name", name)
	return WithXID(ctx, xid), xid, nil
}

// millis rounds a positive duration up to whole milliseconds.
func millis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// Commit asks the TC to commit xid and returns the status it answered.
//
// A nil error means the commit decision is durable; phase two may still be
// running (COMMITTING, ASYNC_COMMITTING, COMMIT_RETRYING), which is the
// TC's job and counts as committed. Otherwise the error wraps ErrRolledBack
// (the decision is rollback; the protocol error, such as
// protocol.ErrTimedOut, is wrapped too) or ErrUnknownOutcome (the TC could
// not be asked within the decision timeout, or gave no decision). Errors
// that wrap neither mean the request was not made (an invalid XID or
// Manager).
//
// The RPC runs under context.WithoutCancel(ctx) with its own deadline
// (WithDecisionTimeout): a caller that gives up must not leave a decision
// half asked. It is retried with backoff while the outcome is unknown,
// which is safe because a repeated Commit reports the decision made.
// When the TC answers with an error rather than a status, the status
// returned is GLOBAL_STATUS_UNKNOWN.
func (m *Manager) Commit(ctx context.Context, xid string) (xactpb.GlobalStatus, error) {
	return m.commit(ctx, xid, nil, nil)
}

func (m *Manager) commit(ctx context.Context, xid string, begin *xactpb.BeginRequest, reports []*xactpb.ReportBranchRequest) (xactpb.GlobalStatus, error) {
	if err := m.check(xid); err != nil {
		return xactpb.GlobalStatus_GLOBAL_STATUS_UNKNOWN, fmt.Errorf("tm: commit: %w", err)
	}
	ctx, span := m.startDecision(ctx, spanCommit)
	st, err := m.askCommit(ctx, xid, begin, reports)
	endDecision(span, xid, st, err)
	return st, err
}

func (m *Manager) askCommit(ctx context.Context, xid string, begin *xactpb.BeginRequest, reports []*xactpb.ReportBranchRequest) (xactpb.GlobalStatus, error) {
	st, err := m.decide(ctx, "commit", xid, func(ctx context.Context) (xactpb.GlobalStatus, error) {
		r, err := m.client.Commit(tracing.Outgoing(ctx), &xactpb.CommitRequest{Xid: xid, Begin: begin, Reports: reports}, grpc.WaitForReady(true))
		return r.GetStatus(), err
	})
	switch {
	case err == nil && DecidedCommit(st):
		m.cfg.log.DebugContext(ctx, "global transaction committed", "xid", xid, "status", st)
		return st, nil
	case err == nil && DecidedRollback(st):
		return st, fmt.Errorf("tm: commit %s: %w (status %v)", xid, ErrRolledBack, st)
	case err == nil:
		return st, fmt.Errorf("tm: commit %s: %w: TC answered status %v", xid, ErrUnknownOutcome, st)
	case errors.Is(err, protocol.ErrCommitted):
		return xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED, nil
	case errors.Is(err, protocol.ErrRolledBack), errors.Is(err, protocol.ErrTimedOut):
		return xactpb.GlobalStatus_GLOBAL_STATUS_UNKNOWN, fmt.Errorf("tm: commit %s: %w: %w", xid, ErrRolledBack, err)
	default:
		return xactpb.GlobalStatus_GLOBAL_STATUS_UNKNOWN, fmt.Errorf("tm: commit %s: %w: %w", xid, ErrUnknownOutcome, err)
	}
}

// Rollback asks the TC to roll back xid and returns the status it
// answered. A nil error means the rollback decision is durable (including
// a global the TC had already rolled back, for example after its
// timeout); otherwise the error wraps ErrCommitted (the decision is
// commit) or ErrUnknownOutcome. It runs and retries like Commit.
func (m *Manager) Rollback(ctx context.Context, xid string) (xactpb.GlobalStatus, error) {
	return m.rollback(ctx, xid, nil, nil)
}

func (m *Manager) rollback(ctx context.Context, xid string, begin *xactpb.BeginRequest, reports []*xactpb.ReportBranchRequest) (xactpb.GlobalStatus, error) {
	if err := m.check(xid); err != nil {
		return xactpb.GlobalStatus_GLOBAL_STATUS_UNKNOWN, fmt.Errorf("tm: rollback: %w", err)
	}
	ctx, span := m.startDecision(ctx, spanRollback)
	st, err := m.askRollback(ctx, xid, begin, reports)
	endDecision(span, xid, st, err)
	return st, err
}

func (m *Manager) askRollback(ctx context.Context, xid string, begin *xactpb.BeginRequest, reports []*xactpb.ReportBranchRequest) (xactpb.GlobalStatus, error) {
	st, err := m.decide(ctx, "rollback", xid, func(ctx context.Context) (xactpb.GlobalStatus, error) {
		r, err := m.client.Rollback(tracing.Outgoing(ctx), &xactpb.RollbackRequest{Xid: xid, Begin: begin, Reports: reports}, grpc.WaitForReady(true))
		return r.GetStatus(), err
	})
	switch {
	case err == nil && DecidedRollback(st):
		m.cfg.log.DebugContext(ctx, "global transaction rolled back", "xid", xid, "status", st)
		return st, nil
	case err == nil && DecidedCommit(st):
		return st, fmt.Errorf("tm: rollback %s: %w (status %v)", xid, ErrCommitted, st)
	case err == nil:
		return st, fmt.Errorf("tm: rollback %s: %w: TC answered status %v", xid, ErrUnknownOutcome, st)
	case errors.Is(err, protocol.ErrTimedOut):
		return xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACKING, nil
	case errors.Is(err, protocol.ErrRolledBack):
		return xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKING, nil
	case errors.Is(err, protocol.ErrCommitted):
		return xactpb.GlobalStatus_GLOBAL_STATUS_UNKNOWN, fmt.Errorf("tm: rollback %s: %w: %w", xid, ErrCommitted, err)
	default:
		return xactpb.GlobalStatus_GLOBAL_STATUS_UNKNOWN, fmt.Errorf("tm: rollback %s: %w: %w", xid, ErrUnknownOutcome, err)
	}
}

// Status returns the TC's status of xid. It is read-only and so retried
// with backoff while the TC is unreachable, within ctx and the decision
// timeout. An XID the TC does not know gives protocol.ErrNotFound.
func (m *Manager) Status(ctx context.Context, xid string) (xactpb.GlobalStatus, error) {
	if err := m.check(xid); err != nil {
		return xactpb.GlobalStatus_GLOBAL_STATUS_UNKNOWN, fmt.Errorf("tm: status: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.decisionTimeout)
	defer cancel()
	st, err := m.retry(ctx, "status", xid, m.cfg.rpcTimeout, func(ctx context.Context) (xactpb.GlobalStatus, error) {
		r, err := m.client.GetStatus(ctx, &xactpb.GetStatusRequest{Xid: xid}, grpc.WaitForReady(true))
		return r.GetStatus(), err
	})
	if err != nil {
		return st, fmt.Errorf("tm: status %s: %w", xid, err)
	}
	return st, nil
}

func (m *Manager) check(xid string) error {
	if err := m.Err(); err != nil {
		return err
	}
	return ValidateXID(xid)
}

// decide runs a decision RPC (Commit or Rollback) detached from the
// caller's cancellation, under the decision timeout, retrying while the
// outcome is unknown.
func (m *Manager) decide(ctx context.Context, op, xid string, call func(context.Context) (xactpb.GlobalStatus, error)) (xactpb.GlobalStatus, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.decisionTimeout)
	defer cancel()
	return m.retry(ctx, op, xid, m.cfg.decisionAttempt, call)
}

// retry calls call until it returns an answer (a status or an error that
// is not protocol.Retryable) or ctx is done; each attempt has its own
// timeout. Only for calls that are safe to repeat.
func (m *Manager) retry(ctx context.Context, op, xid string, attemptTimeout time.Duration, call func(context.Context) (xactpb.GlobalStatus, error)) (xactpb.GlobalStatus, error) {
	var st xactpb.GlobalStatus
	err := m.cfg.backoff.Retry(ctx, protocol.Retryable, func(attempt int, d time.Duration, err error) {
		m.cfg.log.WarnContext(ctx, "tm: "+op+" failed, retrying", "xid", xid, "attempt", attempt+1, "wait", d, "err", err)
	}, func(int) error {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		defer cancel()
		var err error
		st, err = call(actx)
		return protocol.FromStatus(err)
	})
	if err != nil {
		return xactpb.GlobalStatus_GLOBAL_STATUS_UNKNOWN, err
	}
	return st, nil
}

// DecidedCommit reports whether s means that the commit decision is
// durable, whether or not phase two has finished (protocol.DecidedCommit).
func DecidedCommit(s xactpb.GlobalStatus) bool { return protocol.DecidedCommit(s) }

// DecidedRollback reports whether s means that the rollback decision is
// durable, whether or not compensation has finished
// (protocol.DecidedRollback).
func DecidedRollback(s xactpb.GlobalStatus) bool { return protocol.DecidedRollback(s) }
