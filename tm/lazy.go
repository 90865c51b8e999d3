package tm

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xact-io/xact/internal/global"
	"github.com/xact-io/xact/internal/tracing"
	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
)

// Lazy Begin.
//
// Do does not ask the TC to begin a global transaction. It makes the XID
// itself, from a namespace the TC reserved for this Manager (the Reserve
// RPC, once per Manager), and the TC begins the global when it first hears
// of it: from the first branch registration (rm.Client.RegisterBranch sends
// the Begin along, see PendingBegin), from an explicit Begin just before the
// XID leaves the process (the gRPC and HTTP propagation helpers call
// EnsureBegun), or from Commit/Rollback. A transaction that registered no
// branch and never left the process is decided without any RPC. This saves
// one round trip, and the TC one write, for most transactions.
//
// An XID sent to another service by other means (a message payload, a
// hand-made header) must be preceded by EnsureBegun(ctx), or a service that
// registers under it first would find no transaction.

// ErrEnded: a branch tried to join a global transaction that Do has already
// decided.
var ErrEnded = errors.New("tm: global transaction already ended")

// lazyTx is a global transaction begun lazily by Do. Do's context carries
// it (global.WithLazy), so that rm.Client.RegisterBranch finds it through
// global.PendingBegin without importing tm.
type lazyTx struct {
	m        *Manager
	xid      string
	name     string
	deadline time.Time // zero: the TC's default timeout

	mu struct {
		sync.Mutex
		told      bool // a request carrying the Begin was sent: the TC may know it
		confirmed bool // the TC answered such a request: it knows it
		ended     bool // decided: no branch may join any more
	}
}

var _ global.Lazy = (*lazyTx)(nil)

func lazyFrom(ctx context.Context, xid string) *lazyTx {
	l, _ := global.LazyOf(ctx, xid).(*lazyTx)
	return l
}

// request is the Begin to send with the TC's first news of the global: the
// remaining timeout, so the TC's deadline is the TM's.
// It fails once the timeout has passed: a branch must not join then.
func (l *lazyTx) request() (*xactpb.BeginRequest, error) {
	if !l.deadline.IsZero() && time.Until(l.deadline) <= 0 {
		return nil, fmt.Errorf("tm: %s: %w", l.xid, protocol.ErrTimedOut)
	}
	return l.beginRequest(), nil
}

// beginRequest is the Begin with the remaining timeout (at least 1 ms); a
// zero deadline (no timeout asked) leaves it to the TC's default.
func (l *lazyTx) beginRequest() *xactpb.BeginRequest {
	req := &xactpb.BeginRequest{Name: l.name, Xid: l.xid}
	if !l.deadline.IsZero() {
		req.TimeoutMs = max(1, millis(time.Until(l.deadline)))
	}
	return req
}

// PendingBegin returns, for the global transaction xid carried by ctx, the
// Begin that a request naming xid must carry because the TC may not have
// begun it yet, and a function to call once the TC has answered such a
// request successfully. It returns nil, nil, nil when there is nothing to
// send (the global was begun eagerly or the TC knows it). It fails with
// ErrEnded once Do has decided the transaction, and with
// protocol.ErrTimedOut after its timeout.
func PendingBegin(ctx context.Context, xid string) (*xactpb.BeginRequest, func(), error) {
	return global.PendingBegin(ctx, xid)
}

// PendingBegin implements global.Lazy (see the function PendingBegin).
func (l *lazyTx) PendingBegin() (*xactpb.BeginRequest, func(), error) {
	xid := l.xid
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.ended {
		return nil, nil, fmt.Errorf("tm: %s: %w", xid, ErrEnded)
	}
	if l.mu.confirmed {
		return nil, nil, nil
	}
	req, err := l.request()
	if err != nil {
		return nil, nil, err
	}
	l.mu.told = true
	return req, l.confirm, nil
}

func (l *lazyTx) confirm() {
	l.mu.Lock()
	l.mu.confirmed = true
	l.mu.Unlock()
}

// EnsureBegun makes sure the TC has begun the global transaction carried by
// ctx, so that its XID may be given to another process. The propagation
// helpers (UnaryClientInterceptor, StreamClientInterceptor, Transport) call
// it; call it yourself before sending the XID any other way. It is a no-op
// without a lazily begun transaction in ctx.
func EnsureBegun(ctx context.Context) error {
	xid, ok := XID(ctx)
	if !ok {
		return nil
	}
	req, confirm, err := PendingBegin(ctx, xid)
	if err != nil || req == nil {
		return err
	}
	l := lazyFrom(ctx, xid)
	actx, cancel := context.WithTimeout(ctx, l.m.cfg.rpcTimeout)
	defer cancel()
	if _, err := l.m.client.Begin(tracing.Outgoing(actx), req, grpc.WaitForReady(true)); err != nil {
		return fmt.Errorf("tm: begin %s before propagating it: %w", xid, protocol.FromStatus(err))
	}
	confirm()
	return nil
}

// end marks the transaction decided and reports whether the TC may know it
// (then the decision must be asked of it) and whether it surely does.
func (l *lazyTx) end() (told, confirmed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.ended = true
	return l.mu.told, l.mu.confirmed
}

// nextXID returns a fresh XID from this Manager's namespace, reserving one
// first if needed. ok is false when the TC offers no namespace (an older
// TC): the caller begins eagerly. carries reports that the TC records the
// phase-one reports other requests carry (global.WithReports).
func (m *Manager) nextXID(ctx context.Context) (xid string, ok, carries bool, err error) {
	m.ns.mu.Lock()
	defer m.ns.mu.Unlock()
	if m.ns.unsupported {
		return "", false, false, nil
	}
	if m.ns.prefix == "" {
		actx, cancel := context.WithTimeout(ctx, m.cfg.rpcTimeout)
		resp, err := m.client.Reserve(actx, &xactpb.ReserveRequest{}, grpc.WaitForReady(true))
		cancel()
		if status.Code(err) == codes.Unimplemented {
			m.ns.unsupported = true
			return "", false, false, nil
		}
		if err != nil {
			return "", false, false, fmt.Errorf("tm: reserve an XID namespace: %w", protocol.FromStatus(err))
		}
		m.ns.prefix = resp.GetXidPrefix()
		m.ns.carries = resp.GetCarriesReports()
	}
	m.ns.seq++
	xid = m.ns.prefix + strconv.FormatUint(m.ns.seq, 36)
	if err := ValidateXID(xid); err != nil {
		return "", false, false, fmt.Errorf("tm: the TC reserved a bad XID namespace %q: %w", m.ns.prefix, err)
	}
	return xid, true, m.ns.carries, nil
}
