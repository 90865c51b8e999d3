package saga

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/xact-io/xact/internal/backoff"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/rm/fence"
)

// StepDef is one step of a saga: a named action and its compensation.
// Make it with Step or FencedStep.
type StepDef[S any] struct {
	name  string
	retry RetryPolicy
	err   error // a construction error, returned by Define

	// run runs the action once.
	run func(ctx context.Context, b fence.Branch, base Record[S], s S) (S, error)
	// compensate undoes the action; r is decoded from the TC's record.
	compensate func(ctx context.Context, b fence.Branch, r Record[S]) error
	// commit runs when the saga's global transaction commits.
	commit func(ctx context.Context, b fence.Branch) error
}

// Name returns the step's name.
func (d StepDef[S]) Name() string { return d.name }

// StepOption configures a step.
type StepOption func(*stepConfig) error

type stepConfig struct {
	retry RetryPolicy
}

// RetryPolicy retries a step's action when it fails transiently, before
// the step is given up as failed (and the saga compensated). The action
// must then be safe to repeat; a fenced action is (each attempt is its own
// transaction, and a failed one leaves nothing behind).
type RetryPolicy struct {
	// Attempts is the most times the action runs, the first included
	// (0 or 1: no retry).
	Attempts int
	// Base and Max shape the wait before retry n: Base·2^(n-1) capped at
	// Max, with jitter (defaults 100ms and 5s).
	Base, Max time.Duration
	// Retryable says whether an error is transient. The default retries
	// every error except those marked with rm.Permanent, the fence's
	// refusals (fence.ErrTryAfterCancel, fence.ErrAlreadyTried) and the
	// errors of a context that has ended.
	Retryable func(error) bool
}

// Defaults of RetryPolicy.
const (
	DefaultRetryBase = 100 * time.Millisecond
	DefaultRetryMax  = 5 * time.Second
)

func (p RetryPolicy) normalized() (RetryPolicy, error) {
	if p.Attempts < 0 || p.Base < 0 || p.Max < 0 {
		return p, fmt.Errorf("retry policy %+v: negative field", p)
	}
	if p.Attempts == 0 {
		p.Attempts = 1
	}
	if p.Base == 0 {
		p.Base = DefaultRetryBase
	}
	if p.Max == 0 {
		p.Max = max(DefaultRetryMax, p.Base)
	}
	if p.Max < p.Base {
		return p, fmt.Errorf("retry policy: Max %v below Base %v", p.Max, p.Base)
	}
	if p.Retryable == nil {
		p.Retryable = transient
	}
	return p, nil
}

// transient is the default RetryPolicy.Retryable.
func transient(err error) bool {
	switch {
	case rm.IsPermanent(err),
		errors.Is(err, fence.ErrTryAfterCancel),
		errors.Is(err, fence.ErrAlreadyTried),
		errors.Is(err, context.Canceled),
		errors.Is(err, context.DeadlineExceeded):
		return false
	}
	return true
}

// policy is the wait before each retry: Base·2^(n-1) before retry n,
// capped at Max, with jitter.
func (p RetryPolicy) policy() backoff.Policy {
	return backoff.Policy{Base: p.Base, Max: p.Max}
}

// WithRetry sets the step's retry policy for its action (default: no
// retry). Compensations are not retried here: the TC retries them, with
// backoff, until they return nil or a permanent error.
func WithRetry(p RetryPolicy) StepOption {
	return func(c *stepConfig) error {
		n, err := p.normalized()
		if err != nil {
			return err
		}
		c.retry = n
		return nil
	}
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,100}$`)

func validName(what, name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%w: %s name %q must be 1-100 characters of [A-Za-z0-9_.:-]", ErrInvalidArgument, what, name)
	}
	return nil
}

func newStep[S any](name string, opts []StepOption) StepDef[S] {
	d := StepDef[S]{name: name}
	cfg := stepConfig{}
	cfg.retry, _ = RetryPolicy{}.normalized()
	if err := validName("step", name); err != nil {
		d.err = err
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil && d.err == nil {
			d.err = fmt.Errorf("%w: step %s: %w", ErrInvalidArgument, name, err)
		}
	}
	d.retry = cfg.retry
	return d
}

// Step defines a step named name (unique within its saga) whose action
// takes the saga's state and returns the next state, and whose compensation
// undoes it. The compensation runs in phase two, pushed by the TC, possibly
// in another process after a restart; it must be idempotent (it may run
// more than once) and must tolerate a step whose action never ran or did
// not finish (see Record and StepStatus). It follows rm.Handler's result
// contract: nil is done, rm.Permanent parks the saga for an operator, any
// other error is retried by the TC with backoff. compensate may be nil for
// a step with nothing to undo.
//
// The action runs with ctx carrying the global transaction (tm.XID: the tm
// gRPC and HTTP interceptors send it to remote services) and the step
// (StepFrom). The compensation runs in phase two, outside the global
// transaction: its ctx carries the step (StepFrom) but no XID, so nothing
// it calls joins a transaction that is being rolled back; a remote
// compensation names the branch in its request (Record.XID, BranchID).
func Step[S any](name string, action func(ctx context.Context, s S) (S, error), compensate func(ctx context.Context, r Record[S]) error, opts ...StepOption) StepDef[S] {
	d := newStep[S](name, opts)
	if action == nil && d.err == nil {
		d.err = fmt.Errorf("%w: step %s: nil action", ErrInvalidArgument, name)
	}
	d.run = func(ctx context.Context, _ fence.Branch, _ Record[S], s S) (S, error) { return action(ctx, s) }
	d.compensate = func(ctx context.Context, _ fence.Branch, r Record[S]) error {
		if compensate == nil {
			return nil
		}
		return compensate(ctx, r)
	}
	d.commit = func(context.Context, fence.Branch) error { return nil }
	return d
}

// FencedStep defines a step whose action and compensation work in one
// database, each inside a local transaction in which the fence f records
// the step (see fence.Fence): the compensation runs at most once, is
// skipped when the action never committed anything (the process stopped
// between registering the step and running it), and an action that
// arrives after its compensation is refused. The compensation is told how the action
// ended from the fence, which knows it exactly: StepDone (its transaction
// committed; Output may be nil if the process stopped before recording it)
// or StepFailed (its transaction rolled back: only effects outside the
// database may need undoing).
//
// The functions must do their work through tx and not commit or roll it
// back.
func FencedStep[S any](name string, f *fence.Fence, action func(ctx context.Context, tx *sql.Tx, s S) (S, error), compensate func(ctx context.Context, tx *sql.Tx, r Record[S]) error, opts ...StepOption) StepDef[S] {
	d := newStep[S](name, opts)
	switch {
	case d.err != nil:
	case f == nil:
		d.err = fmt.Errorf("%w: step %s: nil fence", ErrInvalidArgument, name)
	case action == nil:
		d.err = fmt.Errorf("%w: step %s: nil action", ErrInvalidArgument, name)
	}
	d.run = func(ctx context.Context, b fence.Branch, base Record[S], s S) (S, error) {
		var out S
		var cancelFailed func(context.Context, *sql.Tx) error
		if compensate != nil {
			cancelFailed = func(ctx context.Context, tx *sql.Tx) error {
				r := base
				r.Status, r.Input = StepFailed, s
				return compensate(ctx, tx, r)
			}
		}
		err := f.Try(ctx, b, func(ctx context.Context, tx *sql.Tx) error {
			var err error
			out, err = action(ctx, tx, s)
			return err
		}, cancelFailed)
		return out, err
	}
	d.compensate = func(ctx context.Context, b fence.Branch, r Record[S]) error {
		return f.Cancel(ctx, b, func(ctx context.Context, tx *sql.Tx, o fence.TryOutcome) error {
			if compensate == nil {
				return nil
			}
			switch o {
			case fence.TryDone:
				r.Status = StepDone
			case fence.TryFailed:
				r.Status, r.Output = StepFailed, nil
			}
			return compensate(ctx, tx, r)
		})
	}
	// Committing marks the row confirmed, so that cleanup can delete it.
	d.commit = func(ctx context.Context, b fence.Branch) error { return f.Confirm(ctx, b, nil) }
	return d
}
