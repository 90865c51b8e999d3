package rm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xact-io/xact/internal/backoff"
	"github.com/xact-io/xact/internal/global"
	"github.com/xact-io/xact/internal/tracing"
	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
)

// Client is a resource manager's connection to the TC: phase-one calls
// (RegisterBranch, ReportBranch, QueryLocks) and, once started, the Attach
// stream on which the TC pushes phase-two actions to the Handlers declared
// with Serve. It is safe for concurrent use.
//
// In a cluster of coordinators on a shared store, the coordinator that
// drives a global pushes its phase two, so an RM must be attached to every
// one: a Client made with Dial, or with WithDialOptions, keeps one Attach
// stream to each live coordinator the cluster names (see peers.go) besides
// the one over its own connection.
//
// Goroutines: Start launches the attach loop, which owns one sender and
// one dispatcher goroutine per stream and one goroutine per running action
// (at most the WithConcurrency value); one more attach loop runs per
// coordinator of a cluster. Close stops them all and waits for them.
type Client struct {
	client xactpb.CoordinatorClient
	cfg    config
	err    error     // a configuration error; every call returns it
	closer io.Closer // the connection Dial made, closed by Close
	tracer tracing.Tracer

	// sem bounds the phase-two actions running at once. Only a stream's
	// dispatcher waits for it, never the loop that reads the stream.
	sem chan struct{}
	// Counters reported by Status: welcomed streams, actions received and
	// not started, actions running, actions dropped unanswered.
	attaches, queued, running, dropped atomic.Int64
	// seed is the Attach stream over the Client's own connection.
	seed *link
	// wg counts every goroutine the Client started.
	wg sync.WaitGroup

	mu struct {
		sync.Mutex
		state    state
		cancel   context.CancelFunc // ends the attach loop and running actions
		root     context.Context    // the attach loops' context once started
		lastErr  error              // why the seed's last attach attempt failed, nil once welcomed
		handlers map[route]Handler
		inflight map[flightKey]*flight
		// peers are the streams to the coordinators of a cluster, by
		// node id (only with dial options: WithDialOptions or Dial).
		peers map[string]*link
		// lists are the latest lists of live coordinators that the
		// streams up now received (peers.go).
		lists map[*link][]*xactpb.Peer
		// warnedAlone is set once the Client warned that it cannot
		// follow a cluster for lack of dial options.
		warnedAlone bool
	}
}

type state int

const (
	stateNew state = iota
	stateStarted
	stateClosed
)

// route selects the Handler of an action.
type route struct {
	resource string
	typ      xactpb.BranchType
}

// New returns a Client that talks to the TC over conn, which it does not
// own (it may be shared with a tm.Manager). New starts nothing; call Serve
// and Start. New never fails: a bad option or a nil conn makes every call
// return an error wrapping ErrInvalidOption (see Err).
//
// Dial conn with protocol.DialOptions (plus your credentials): its
// keepalive finds a TC that vanished without closing the connection, and
// its reconnect backoff re-attaches the RM within about a second of the TC
// being back. gRPC's defaults do neither: no keepalive, and reconnect
// attempts up to two minutes apart.
func New(conn grpc.ClientConnInterface, opts ...Option) *Client {
	c := &Client{cfg: defaultConfig()}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&c.cfg); err != nil && c.err == nil {
			c.err = fmt.Errorf("%w: %w", ErrInvalidOption, err)
		}
	}
	if conn == nil && c.err == nil {
		c.err = fmt.Errorf("%w: nil connection", ErrInvalidOption)
	}
	if conn != nil {
		c.client = xactpb.NewCoordinatorClient(conn)
		c.seed = newLink(c.client, "", "", nil)
	}
	c.sem = make(chan struct{}, c.cfg.concurrency)
	c.tracer = tracing.NewTracer(c.TracerProvider(), scope)
	c.mu.handlers = make(map[route]Handler)
	c.mu.inflight = make(map[flightKey]*flight)
	c.mu.peers = make(map[string]*link)
	c.mu.lists = make(map[*link][]*xactpb.Peer)
	return c
}

// Dial returns a Client with its own client connection to the TC at addrs
// ("host:port", a list "tc-a:8091,tc-b:8091" of coordinators sharing one
// store, or a target with a scheme such as dns:///tc.example:8091: see
// protocol.Target), dialed with protocol.DialOptions and then the options
// of WithDialOptions (without any, the connection uses no transport
// security). Once started it attaches to every live coordinator of a
// cluster, dialing each with the same options. Close closes the
// connections.
func Dial(addrs string, opts ...Option) (*Client, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidOption, err)
		}
	}
	target, topts, err := protocol.Target(addrs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOption, err)
	}
	conn, err := grpc.NewClient(target, append(cfg.peerDialOptions(), topts...)...)
	if err != nil {
		return nil, fmt.Errorf("rm: dial %s: %w", addrs, err)
	}
	c := New(conn, slices.Concat(opts, []Option{func(c *config) error { c.follow = true; return nil }})...)
	c.closer = conn
	return c, nil
}

// Err returns the configuration error that makes every call fail, or nil.
func (c *Client) Err() error {
	if c.err == nil && c.client == nil {
		return fmt.Errorf("%w: zero Client; use rm.New", ErrInvalidOption)
	}
	return c.err
}

// Serve declares that this RM runs phase two for branches of resource in
// mode typ, with h. It may be called before or after Start. Declaring a
// resource while the stream is up sends a new Hello on the same stream
// (the TC takes a repeated Hello as replacing the declaration); every
// (re-)attach sends the full declaration. Serving the same resource and
// type again replaces the handler.
func (c *Client) Serve(resource string, typ xactpb.BranchType, h Handler) error {
	if err := c.Err(); err != nil {
		return err
	}
	if resource == "" {
		return fmt.Errorf("rm: serve: empty resource id: %w", ErrInvalidArgument)
	}
	if h == nil {
		return fmt.Errorf("rm: serve %s: nil handler: %w", resource, ErrInvalidArgument)
	}
	if _, ok := xactpb.BranchType_name[int32(typ)]; !ok {
		return fmt.Errorf("rm: serve %s: unknown branch type %d: %w", resource, typ, ErrInvalidArgument)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.state == stateClosed {
		return ErrClosed
	}
	r := route{resource, typ}
	_, existed := c.mu.handlers[r]
	c.mu.handlers[r] = h
	if !existed && c.mu.state == stateStarted {
		c.seed.declare()
		for _, l := range c.mu.peers {
			l.declare()
		}
	}
	return nil
}

func (c *Client) handler(resource string, typ xactpb.BranchType) Handler {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.handlers[route{resource, typ}]
}

// hello builds the declaration of everything served.
func (c *Client) hello() *xactpb.Hello {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := &xactpb.Hello{ClientId: c.cfg.clientID}
	for r := range c.mu.handlers {
		h.ResourceIds = append(h.ResourceIds, r.resource)
		h.BranchTypes = append(h.BranchTypes, r.typ)
		h.Routes = append(h.Routes, &xactpb.Route{ResourceId: r.resource, BranchType: r.typ})
	}
	slices.SortFunc(h.Routes, func(a, b *xactpb.Route) int {
		if c := strings.Compare(a.GetResourceId(), b.GetResourceId()); c != 0 {
			return c
		}
		return int(a.GetBranchType() - b.GetBranchType())
	})
	slices.Sort(h.ResourceIds)
	h.ResourceIds = slices.Compact(h.ResourceIds)
	slices.Sort(h.BranchTypes)
	h.BranchTypes = slices.Compact(h.BranchTypes)
	return h
}

// Start opens the Attach stream and keeps it open until Close: when the
// stream ends it re-attaches at once (waiting for the connection to be
// ready; attempts the TC refuses wait with capped exponential backoff and
// jitter) and declares every served resource again. Start returns once the
// TC has welcomed the RM; with an error wrapping
// protocol.ErrUnauthenticated as soon as the TC refuses the connection's
// credentials (see protocol.WithToken); or with ctx's error, and the last
// attempt's, if ctx ends first. In the last two cases the loop keeps
// trying in the background (Close stops it). ctx's values, but not its
// cancellation, reach the handlers' contexts.
func (c *Client) Start(ctx context.Context) error {
	if err := c.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	switch c.mu.state {
	case stateStarted:
		c.mu.Unlock()
		return ErrStarted
	case stateClosed:
		c.mu.Unlock()
		return ErrClosed
	}
	root, cancel := context.WithCancel(global.WithoutXID(context.WithoutCancel(ctx)))
	c.mu.state = stateStarted
	c.mu.cancel = cancel
	c.mu.root = root
	c.mu.Unlock()

	welcomed := make(chan struct{})
	refused := make(chan error, 1)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.attachLoop(root, c.seed, welcomed, refused)
	}()
	select {
	case <-welcomed:
		return nil
	case <-root.Done():
		return ErrClosed
	case err := <-refused:
		return fmt.Errorf("rm: start: the TC refused the credentials (still trying): %w", err)
	case <-ctx.Done():
		c.mu.Lock()
		last := c.mu.lastErr
		c.mu.Unlock()
		if last != nil {
			return fmt.Errorf("rm: start: not attached yet (still trying; last attempt: %v): %w", last, ctx.Err())
		}
		return fmt.Errorf("rm: start: not attached yet (still trying): %w", ctx.Err())
	}
}

// Close stops the attach loops, cancels the contexts of running phase-two
// actions and waits for every goroutine of the Client to return (a handler
// that ignores its context delays Close until it returns). Results not yet
// sent are dropped: the TC delivers those actions again. Close closes the
// connections the Client dialed (Dial's, and those to a cluster's
// coordinators), not one given to New. It is safe to call more than once.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.mu.state == stateClosed {
		c.mu.Unlock()
		c.wg.Wait()
		return nil
	}
	c.mu.state = stateClosed
	cancel := c.mu.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	c.wg.Wait()
	if c.closer != nil {
		return c.closer.Close()
	}
	return nil
}

func (c *Client) usable() error {
	if err := c.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.state == stateClosed {
		return ErrClosed
	}
	return nil
}

// RegisterBranch registers a branch of the global transaction xid on
// resource and takes its row locks (lockKeys, canonical keys within
// resource), all or nothing; appData is handed back to the Handler in phase
// two. It returns the branch id. A lock held by another global gives a
// *protocol.LockConflictError (errors.Is protocol.ErrLockConflict); a
// global that is no longer in Begin gives protocol.ErrNotBegin or
// protocol.ErrTimedOut.
//
// RegisterBranch fails with ErrNotStarted before Start.
//
// RegisterBranch is not retried after an ambiguous failure (a retry could
// register a second branch); it does wait, within ctx and the RPC timeout,
// for a connection that is not ready yet.
//
// The request carries the phase-one reports of xid's earlier branches
// that wait in ctx (global.DeferReport); if it fails they go back to wait
// for the next request.
func (c *Client) RegisterBranch(ctx context.Context, xid, resource string, typ xactpb.BranchType, lockKeys []string, appData []byte) (id int64, err error) {
	if err := c.usable(); err != nil {
		return 0, err
	}
	c.mu.Lock()
	notStarted := c.mu.state == stateNew
	c.mu.Unlock()
	if notStarted {
		return 0, ErrNotStarted
	}
	if err := global.ValidateXID(xid); err != nil {
		return 0, fmt.Errorf("rm: register branch: %w", err)
	}
	if resource == "" {
		return 0, fmt.Errorf("rm: register branch of %s: empty resource id: %w", xid, ErrInvalidArgument)
	}
	ctx, span := c.startRegister(ctx)
	defer func() { endRegister(span, xid, resource, typ, len(lockKeys), id, err) }()
	// A transaction tm.Do began lazily is begun by its first registration.
	begin, begun, err := global.PendingBegin(ctx, xid)
	if err != nil {
		return 0, fmt.Errorf("rm: register branch of %s on %s: %w", xid, resource, err)
	}
	reports := global.TakeReports(ctx, xid)
	actx, cancel := context.WithTimeout(ctx, c.cfg.rpcTimeout)
	defer cancel()
	resp, err := c.client.RegisterBranch(tracing.Outgoing(actx), &xactpb.RegisterBranchRequest{
		Xid:             xid,
		ResourceId:      resource,
		BranchType:      typ,
		LockKeys:        lockKeys,
		ApplicationData: appData,
		Begin:           begin,
		Reports:         reports,
	}, grpc.WaitForReady(true))
	if err != nil {
		global.ReturnReports(ctx, xid, reports)
		return 0, fmt.Errorf("rm: register branch of %s on %s: %w", xid, resource, withCtxErr(actx, protocol.FromStatus(err)))
	}
	if begun != nil {
		begun()
	}
	c.cfg.log.DebugContext(ctx, "branch registered", "xid", xid, "branch_id", resp.GetBranchId(), "resource", resource)
	return resp.GetBranchId(), nil
}

// ReportBranch records the phase-one outcome of a branch (typically
// BRANCH_STATUS_PHASE_ONE_DONE or BRANCH_STATUS_PHASE_ONE_FAILED). A
// non-nil appData replaces the branch's registered application data; nil
// keeps it. It is safe to repeat, so it is retried with backoff while the
// TC is unreachable, within ctx and the retry budget.
func (c *Client) ReportBranch(ctx context.Context, xid string, branchID int64, status xactpb.BranchStatus, appData []byte) error {
	return c.report(ctx, &xactpb.ReportBranchRequest{
		Xid:                   xid,
		BranchId:              branchID,
		Status:                status,
		ApplicationData:       appData,
		UpdateApplicationData: appData != nil,
	})
}

// ReportDone records that a branch's phase one succeeded
// (BRANCH_STATUS_PHASE_ONE_DONE; a non-nil appData replaces the branch's
// application data), as ReportBranch does, but without a round trip of its
// own when it can: if ctx carries the queue of reports of xid (tm.Do makes
// one for the global transactions it begins, on a TC that takes them), the
// report waits there and the next request naming xid carries it — the next
// RegisterBranch, or Do's Commit or Rollback — and is durable with it.
// Otherwise it is sent now with ReportBranch.
//
// A report that waits is lost if this process stops before the next
// request: the branch then stays registered with its registration's data,
// as if the process had stopped just before ReportBranch. Report a failure
// at once, with ReportBranch.
func (c *Client) ReportDone(ctx context.Context, xid string, branchID int64, appData []byte) error {
	if err := c.usable(); err != nil {
		return err
	}
	req := &xactpb.ReportBranchRequest{
		Xid:                   xid,
		BranchId:              branchID,
		Status:                xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_DONE,
		ApplicationData:       appData,
		UpdateApplicationData: appData != nil,
	}
	if global.ValidateXID(xid) == nil && global.DeferReport(ctx, req) {
		return nil
	}
	return c.report(ctx, req)
}

// ReportNothingCommitted reports that an AT branch's phase one failed
// before anything of it was committed (its local transaction was rolled
// back and no commit was ever sent): PHASE_ONE_FAILED with
// nothing_committed. The TC frees the branch's rows at once, the global
// can only roll back, and phase two sends the branch nothing. Report a
// failure whose local commit may have happened with ReportBranch
// (PHASE_ONE_FAILED): it is compensated.
func (c *Client) ReportNothingCommitted(ctx context.Context, xid string, branchID int64) error {
	return c.report(ctx, &xactpb.ReportBranchRequest{
		Xid:              xid,
		BranchId:         branchID,
		Status:           xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_FAILED,
		NothingCommitted: true,
	})
}

func (c *Client) report(ctx context.Context, req *xactpb.ReportBranchRequest) error {
	xid, branchID := req.GetXid(), req.GetBranchId()
	if err := c.usable(); err != nil {
		return err
	}
	if err := global.ValidateXID(xid); err != nil {
		return fmt.Errorf("rm: report branch: %w", err)
	}
	ctx, span := c.startReport(ctx, req)
	err := c.retry(ctx, func(ctx context.Context) error {
		_, err := c.client.ReportBranch(tracing.Outgoing(ctx), req, grpc.WaitForReady(true))
		return err
	})
	tracing.End(span, err)
	if err != nil {
		return fmt.Errorf("rm: report branch %s/%d: %w", xid, branchID, err)
	}
	return nil
}

// QueryLocks asks whether the row keys of resource are free of other
// global transactions' locks (xid's own locks do not conflict; xid may be
// empty for a caller outside any global transaction). It returns nil if
// they are free and the *protocol.LockConflictError naming the first held
// key and its holder if not. It is read-only, so it is retried like
// ReportBranch.
func (c *Client) QueryLocks(ctx context.Context, xid, resource string, keys []string) error {
	if err := c.usable(); err != nil {
		return err
	}
	if xid != "" {
		if err := global.ValidateXID(xid); err != nil {
			return fmt.Errorf("rm: query locks: %w", err)
		}
	}
	var resp *xactpb.QueryLocksResponse
	err := c.retry(ctx, func(ctx context.Context) error {
		var err error
		resp, err = c.client.QueryLocks(ctx, &xactpb.QueryLocksRequest{Xid: xid, ResourceId: resource, LockKeys: keys}, grpc.WaitForReady(true))
		return err
	})
	if err != nil {
		return fmt.Errorf("rm: query locks on %s: %w", resource, err)
	}
	if resp.GetFree() {
		return nil
	}
	return &protocol.LockConflictError{Resource: resource, Key: resp.GetConflictKey(), Holder: resp.GetHolderXid(),
		HolderRollingBack: resp.GetHolderRollingBack()}
}

// retry runs call, which must be safe to repeat, until it succeeds, fails
// with an answer (not protocol.Retryable), or ctx or the retry budget ends.
// The error is passed through protocol.FromStatus.
func (c *Client) retry(ctx context.Context, call func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.retryBudget)
	defer cancel()
	err := c.cfg.backoff.Retry(ctx, protocol.Retryable, nil, func(int) error {
		actx, acancel := context.WithTimeout(ctx, c.cfg.rpcTimeout)
		defer acancel()
		return protocol.FromStatus(call(actx))
	})
	if g, ok := err.(*backoff.GiveUpError); ok {
		if cerr := ctx.Err(); !errors.Is(g.Err, cerr) {
			g.Err = fmt.Errorf("%w (%w)", g.Err, cerr)
		}
		return g
	}
	if err != nil {
		return withCtxErr(ctx, err)
	}
	return nil
}

// withCtxErr returns err, the error of a call made with ctx, so that
// errors.Is matches it with context.DeadlineExceeded or context.Canceled
// when the call timed out or was cancelled: gRPC reports both as a status
// that does not match them. A DeadlineExceeded status may come before
// ctx's own timer fires (the server ends the call on the deadline it was
// sent), so it does not wait for ctx.Err.
func withCtxErr(ctx context.Context, err error) error {
	var cerr error
	switch status.Code(err) {
	case codes.DeadlineExceeded:
		cerr = context.DeadlineExceeded
	case codes.Canceled:
		cerr = ctx.Err()
	}
	if cerr == nil || errors.Is(err, cerr) {
		return err
	}
	return fmt.Errorf("%w (%w)", err, cerr)
}
