package rm

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/xact-io/xact/internal/failpoint"
	"github.com/xact-io/xact/protocol/xactpb"
)

// flightKey identifies a phase-two action independently of its request
// id: the TC may deliver the same action again while it still runs (after
// a retry timer or a re-attach).
type flightKey struct {
	xid    string
	branch int64
	kind   xactpb.ActionKind
}

// flight is one running action; duplicates wait for it and share its
// outcome instead of running the handler concurrently with itself.
type flight struct {
	done    chan struct{}
	outcome xactpb.Outcome
	reason  string
}

// execute runs one action and returns its result.
func (c *Client) execute(root context.Context, a *xactpb.BranchAction) *xactpb.BranchResult {
	key := flightKey{a.GetXid(), a.GetBranchId(), a.GetKind()}
	res := &xactpb.BranchResult{RequestId: a.GetRequestId(), Xid: a.GetXid(), BranchId: a.GetBranchId()}

	c.mu.Lock()
	if f, ok := c.mu.inflight[key]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			res.Outcome, res.Reason = f.outcome, f.reason
		case <-root.Done():
			res.Outcome, res.Reason = xactpb.Outcome_OUTCOME_UNKNOWN, "rm: closing"
		}
		return res
	}
	f := &flight{done: make(chan struct{})}
	c.mu.inflight[key] = f
	c.mu.Unlock()

	f.outcome, f.reason = c.run(root, a)

	c.mu.Lock()
	delete(c.mu.inflight, key)
	c.mu.Unlock()
	close(f.done)

	res.Outcome, res.Reason = f.outcome, f.reason
	return res
}

// run calls the handler of a and maps its result to an outcome.
func (c *Client) run(root context.Context, a *xactpb.BranchAction) (xactpb.Outcome, string) {
	log := c.cfg.log.With("xid", a.GetXid(), "branch_id", a.GetBranchId(), "resource", a.GetResourceId())
	h := c.handler(a.GetResourceId(), a.GetBranchType())
	if h == nil {
		log.WarnContext(root, "rm: no handler for phase-two action", "type", a.GetBranchType(), "kind", a.GetKind())
		return xactpb.Outcome_OUTCOME_UNKNOWN, fmt.Sprintf("rm: no handler for resource %q type %v", a.GetResourceId(), a.GetBranchType())
	}
	ctx, span := c.startPhaseTwo(root, a)
	ctx, cancel := context.WithTimeout(ctx, c.cfg.actionTimeout)
	defer cancel()
	ctx = context.WithValue(ctx, loggerKey{}, log)
	act := Action{
		XID:      a.GetXid(),
		BranchID: a.GetBranchId(),
		Resource: a.GetResourceId(),
		Type:     a.GetBranchType(),
		AppData:  a.GetApplicationData(),
		LockKeys: a.GetLockKeys(),
	}
	err := call(ctx, log, h, a.GetKind(), act)
	o, reason := outcomeOf(err)
	endPhaseTwo(span, a, o, reason)
	failpoint.Hit("rm/phase2/after-handler")
	switch o {
	case xactpb.Outcome_OUTCOME_DONE:
		log.DebugContext(ctx, "rm: phase two done", "kind", a.GetKind())
	case xactpb.Outcome_OUTCOME_FAILED:
		log.ErrorContext(ctx, "rm: phase two failed permanently; the TC parks the branch", "kind", a.GetKind(), "err", err)
	default:
		log.WarnContext(ctx, "rm: phase two outcome unknown; the TC retries", "kind", a.GetKind(), "err", err)
	}
	return o, reason
}

// call runs the handler method for kind, turning a panic into an error
// (whose outcome is UNKNOWN: a crash says nothing about whether retrying
// helps).
func call(ctx context.Context, log *slog.Logger, h Handler, kind xactpb.ActionKind, a Action) (err error) {
	defer func() {
		if v := recover(); v != nil {
			log.ErrorContext(ctx, "rm: phase-two handler panicked", "panic", v, "stack", string(debug.Stack()))
			err = fmt.Errorf("rm: handler panicked: %v", v)
		}
	}()
	switch kind {
	case xactpb.ActionKind_ACTION_KIND_COMMIT:
		return h.Commit(ctx, a)
	case xactpb.ActionKind_ACTION_KIND_ROLLBACK:
		return h.Rollback(ctx, a)
	default:
		return fmt.Errorf("rm: unknown action kind %v", kind)
	}
}

// MaxReasonLen is the longest reason an RM sends with a result; longer
// error texts are cut.
const MaxReasonLen = 1024

// outcomeOf maps a handler's result to the wire: nil is DONE, a Permanent
// error is FAILED, anything else is UNKNOWN.
func outcomeOf(err error) (xactpb.Outcome, string) {
	switch {
	case err == nil:
		return xactpb.Outcome_OUTCOME_DONE, ""
	case IsPermanent(err):
		return xactpb.Outcome_OUTCOME_FAILED, reason(err)
	default:
		return xactpb.Outcome_OUTCOME_UNKNOWN, reason(err)
	}
}

// reason is err's text made fit for a proto string: valid UTF-8 (a
// marshalling error would break the stream) and at most MaxReasonLen bytes.
func reason(err error) string {
	s := strings.ToValidUTF8(err.Error(), "\uFFFD")
	if len(s) <= MaxReasonLen {
		return s
	}
	s = s[:MaxReasonLen]
	return strings.ToValidUTF8(s, "") // drop a rune cut in half
}

type loggerKey struct{}

// Logger returns the logger of a phase-two action's context, carrying the
// keys xid, branch_id and resource, or a logger that discards if ctx is not
// a handler's context.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
