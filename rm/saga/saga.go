package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/xact-io/xact/internal/backoff"
	"github.com/xact-io/xact/internal/tracing"
	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/rm/fence"
	"github.com/xact-io/xact/tm"
)

// Saga is a defined saga: named, ordered steps over a state of type S,
// which is stored as JSON with the TC (so it must survive a JSON round
// trip). It is safe for concurrent use; each Run is one global
// transaction.
type Saga[S any] struct {
	name  string
	tm    *tm.Manager
	rm    *rm.Client
	steps []*StepDef[S]
	// tracer makes the steps' spans, from rm's tracer provider.
	tracer tracing.Tracer
}

// Define defines the saga name with steps, run in order, on rmc: it
// declares every step's compensation to rmc (resource "name/step", branch
// type BRANCH_TYPE_SAGA), so that rmc runs it when the TC rolls back. Run
// begins global transactions through tmgr, which may be nil in a process
// that only serves compensations.
//
// Every process that may run compensations of this saga, for instance
// the one that replaces a crashed orchestrator, must Define it on its
// rm.Client with the same name, step names and S. Defining a saga again on
// the same rm.Client replaces its steps' functions.
func Define[S any](tmgr *tm.Manager, rmc *rm.Client, name string, steps ...StepDef[S]) (*Saga[S], error) {
	if rmc == nil {
		return nil, fmt.Errorf("saga: define %s: nil rm.Client: %w", name, ErrInvalidArgument)
	}
	if err := validName("saga", name); err != nil {
		return nil, fmt.Errorf("saga: define: %w", err)
	}
	if len(steps) == 0 {
		return nil, fmt.Errorf("saga: define %s: no steps: %w", name, ErrInvalidArgument)
	}
	s := &Saga[S]{name: name, tm: tmgr, rm: rmc, tracer: tracing.NewTracer(rmc.TracerProvider(), scope)}
	seen := map[string]bool{}
	for i := range steps {
		d := steps[i]
		if d.err != nil {
			return nil, fmt.Errorf("saga: define %s: %w", name, d.err)
		}
		if d.run == nil {
			return nil, fmt.Errorf("saga: define %s: step %d was not made by Step or FencedStep: %w", name, i, ErrInvalidArgument)
		}
		if seen[d.name] {
			return nil, fmt.Errorf("saga: define %s: step %s appears twice: %w", name, d.name, ErrInvalidArgument)
		}
		seen[d.name] = true
		s.steps = append(s.steps, &d)
	}
	for _, d := range s.steps {
		h := &stepHandler[S]{saga: name, step: d}
		if err := rmc.Serve(s.resource(d), xactpb.BranchType_BRANCH_TYPE_SAGA, h); err != nil {
			return nil, fmt.Errorf("saga: define %s: %w", name, err)
		}
	}
	return s, nil
}

// Name returns the saga's name.
func (s *Saga[S]) Name() string { return s.name }

// resource is the resource id of a step's branches.
func (s *Saga[S]) resource(d *StepDef[S]) string { return s.name + "/" + d.name }

// Run runs the saga on in, in a global transaction named after the saga
// (tm.Options{Name: s.Name()}), and returns the final state. See RunWith.
func (s *Saga[S]) Run(ctx context.Context, in S) (S, error) {
	return s.RunWith(ctx, tm.Options{}, in)
}

// RunWith runs the saga on in inside tmgr.Do with opts (Name defaults to
// the saga's name; set Timeout to bound how long a saga whose orchestrator
// died stays undecided before the TC compensates it). Each step is a
// branch: registered with its input before the action runs, reported with
// its output after it succeeds (PHASE_ONE_DONE), or with its error after it
// fails (PHASE_ONE_FAILED, after the step's retries, sent at once). A
// success's report costs no round trip of its own: it travels with the
// next request of the global transaction, the next step's registration
// or the commit (or rollback) (see rm.Client.ReportDone); only the last
// step of a saga that joined a global transaction begun by its caller
// is reported on its own, since its caller's decision may be far off.
// If the orchestrating process stops between a step's action and that
// next request, the step is compensated as StepUnknown (see Record). When
// every step succeeds the global transaction commits and RunWith returns
// the last step's state.
//
// When a step fails, RunWith rolls the global transaction back and returns
// an error wrapping a *StepError; the TC then compensates every step that
// was registered, the failed one included (told StepFailed), one at a time
// in reverse order, through whatever rm.Client serves the saga — this one,
// or another process's if this one stops. Compensation does not depend on
// the orchestrating process staying alive. If the rollback cannot be
// confirmed (the TC unreachable), the error is tm.Do's: it matches
// tm.ErrUnknownOutcome, not the *StepError, which its
// (*tm.OutcomeError).BusinessErr returns.
//
// With propagation Required (the default) and a global transaction
// already in ctx, the steps join it, and its initiator decides.
func (s *Saga[S]) RunWith(ctx context.Context, opts tm.Options, in S) (S, error) {
	var zero S
	if s.tm == nil {
		return zero, fmt.Errorf("saga %s: %w", s.name, ErrNoManager)
	}
	if opts.Name == "" {
		opts.Name = s.name
	}
	var out S
	outer, hadOuter := tm.XID(ctx)
	err := s.tm.Do(ctx, opts, func(ctx context.Context) error {
		xid, ok := tm.XID(ctx)
		if !ok {
			return fmt.Errorf("saga %s: propagation %v: %w", s.name, opts.Propagation, tm.ErrNoTransaction)
		}
		// Joined: the decision is the caller's, maybe much later.
		joined := hadOuter && outer == xid
		st := in
		for i, d := range s.steps {
			// A step's success may wait for the next request of the
			// global (rm.Client.ReportDone) when one follows at once.
			carried := i < len(s.steps)-1 || !joined
			next, err := s.runStep(ctx, xid, d, st, carried)
			if err != nil {
				return err
			}
			st = next
		}
		out = st
		return nil
	})
	if err != nil {
		return zero, err
	}
	return out, nil
}

// reportTimeout bounds the report of a failed step.
const reportTimeout = 5 * time.Second

// runStep registers one step, runs its action with retries, and records the
// outcome with the TC: a failure at once, a success with the next request
// of the global if carried (rm.Client.ReportDone), else at once. It runs
// in the step's span (trace.go).
func (s *Saga[S]) runStep(ctx context.Context, xid string, d *StepDef[S], in S, carried bool) (_ S, err error) {
	var zero S
	ctx, span := startStep(s.tracer, ctx, xid, s.resource(d), d.name)
	defer func() { tracing.End(span, err) }()
	serr := &StepError{Saga: s.name, Step: d.name, XID: xid}
	rawIn, err := json.Marshal(in)
	if err != nil {
		serr.Err = fmt.Errorf("encode input: %w", err)
		return zero, serr
	}
	rec := record{V: recordVersion, Saga: s.name, Step: d.name, State: stateStarted, In: rawIn}
	data, err := rec.encode()
	if err != nil {
		serr.Err = err
		return zero, serr
	}
	resource := s.resource(d)
	id, err := s.rm.RegisterBranch(ctx, xid, resource, xactpb.BranchType_BRANCH_TYPE_SAGA, nil, data)
	if err != nil {
		serr.Err = err
		return zero, serr
	}
	serr.BranchID = id
	setBranch(span, id)
	b := fence.Branch{XID: xid, BranchID: id, Resource: resource}
	base := Record[S]{Saga: s.name, Step: d.name, XID: xid, BranchID: id, Input: in}

	var out S
	err = d.retry.policy().Retry(ctx, func(err error) bool {
		return serr.Attempts < d.retry.Attempts && d.retry.Retryable(err) && ctx.Err() == nil
	}, nil, func(attempt int) error {
		serr.Attempts = attempt + 1
		actx := withStep(fence.WithBranch(ctx, b), StepInfo{Saga: s.name, Step: d.name, XID: xid, BranchID: id, Attempt: attempt + 1})
		var err error
		out, err = d.run(actx, b, base, in)
		return err
	})
	if err != nil {
		if g, ok := err.(*backoff.GiveUpError); ok { // ctx ended while waiting to retry
			err = errors.Join(g.Err, ctx.Err())
		}
		serr.Err = err
		rec.State, rec.Err = stateFailed, errText(err)
		if rerr := s.reportFailed(ctx, b, &rec); rerr != nil {
			return zero, errors.Join(serr, rerr)
		}
		return zero, serr
	}

	rawOut, err := json.Marshal(out)
	if err != nil {
		// The action is done but its output cannot be recorded: the
		// compensation will see StepUnknown.
		serr.Err = fmt.Errorf("encode output: %w", err)
		return zero, serr
	}
	rec.State, rec.Out = stateDone, rawOut
	if data, err = rec.encode(); err == nil {
		if carried {
			err = s.rm.ReportDone(ctx, xid, id, data)
		} else {
			err = s.rm.ReportBranch(ctx, xid, id, xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_DONE, data)
		}
	}
	if err != nil {
		serr.Err = fmt.Errorf("record output: %w", err)
		return zero, serr
	}
	return out, nil
}

// reportFailed records a failed step with the TC (PHASE_ONE_FAILED, so that
// the global transaction cannot commit), even if ctx has ended. A global
// that already left Begin needs no report.
func (s *Saga[S]) reportFailed(ctx context.Context, b fence.Branch, rec *record) error {
	data, err := rec.encode()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reportTimeout)
	defer cancel()
	err = s.rm.ReportBranch(ctx, b.XID, b.BranchID, xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_FAILED, data)
	if err == nil || errors.Is(err, protocol.ErrNotBegin) || errors.Is(err, protocol.ErrTimedOut) || errors.Is(err, protocol.ErrNotFound) {
		return nil
	}
	return err
}

// StepInfo describes the step an action or compensation runs for.
type StepInfo struct {
	Saga, Step string
	XID        string
	BranchID   int64
	// Attempt is the action's attempt, from 1; 0 in a compensation.
	Attempt int
}

type stepKey struct{}

func withStep(ctx context.Context, i StepInfo) context.Context {
	return context.WithValue(ctx, stepKey{}, i)
}

// StepFrom returns the step whose action or compensation ctx belongs to.
// The step's branch is also in fence.BranchFrom(ctx): an action that calls
// another service can send (XID, BranchID) along, and the remote side can
// fence its work and its compensation with a fence.Fence under that key.
func StepFrom(ctx context.Context) (StepInfo, bool) {
	i, ok := ctx.Value(stepKey{}).(StepInfo)
	return i, ok
}

// stepHandler runs phase two of one step's branches for the rm.Client.
type stepHandler[S any] struct {
	saga string
	step *StepDef[S]
}

var _ rm.Handler = (*stepHandler[struct{}])(nil)

func (h *stepHandler[S]) branch(ctx context.Context, a rm.Action) (context.Context, fence.Branch) {
	b := fence.Branch{XID: a.XID, BranchID: a.BranchID, Resource: a.Resource}
	ctx = withStep(fence.WithBranch(ctx, b), StepInfo{Saga: h.saga, Step: h.step.name, XID: a.XID, BranchID: a.BranchID})
	return ctx, b
}

// Commit runs when the saga committed: there is nothing to undo, and a
// fenced step's record is marked finished.
func (h *stepHandler[S]) Commit(ctx context.Context, a rm.Action) error {
	ctx, b := h.branch(ctx, a)
	if err := h.step.commit(ctx, b); err != nil {
		return fmt.Errorf("saga %s: commit step %s (%v): %w", h.saga, h.step.name, b, err)
	}
	return nil
}

// Rollback compensates the step.
func (h *stepHandler[S]) Rollback(ctx context.Context, a rm.Action) error {
	rec, in, out, err := decodeRecord[S](a.Resource, a.AppData)
	if err != nil {
		return err
	}
	if rec.Saga != h.saga || rec.Step != h.step.name {
		return rm.Permanent(fmt.Errorf("%w: resource %s carries a record of saga %s step %s", ErrRecord, a.Resource, rec.Saga, rec.Step))
	}
	r := Record[S]{Saga: h.saga, Step: h.step.name, XID: a.XID, BranchID: a.BranchID, Input: in, Output: out}
	switch rec.State {
	case stateDone:
		r.Status = StepDone
	case stateFailed:
		r.Status, r.Err = StepFailed, rec.Err
	default:
		r.Status = StepUnknown
	}
	ctx, b := h.branch(ctx, a)
	if err := h.step.compensate(ctx, b, r); err != nil {
		return fmt.Errorf("saga %s: compensate step %s (%v): %w", h.saga, h.step.name, b, err)
	}
	return nil
}
