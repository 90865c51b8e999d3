package saga_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/rm/fence"
	"github.com/xact-io/xact/rm/saga"
	"github.com/xact-io/xact/tm"
)

// TestFencedSaga runs the three fenced steps on MariaDB: all succeed, or
// step k fails and steps k-1..1 are compensated in reverse order, each
// once; the failed step's compensation is told StepFailed and has nothing
// to undo.
func TestFencedSaga(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		failAt      string
		wantStatus  xactpb.GlobalStatus
		wantEffects []string
		wantCalls   []compCall
	}{
		{"", xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED, []string{"do:a", "do:b", "do:c"}, nil},
		{"a", xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED, nil,
			[]compCall{{"a", saga.StepFailed, false}}},
		{"b", xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED, []string{"do:a", "undo:a"},
			[]compCall{{"b", saga.StepFailed, false}, {"a", saga.StepDone, true}}},
		{"c", xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED, []string{"do:a", "do:b", "undo:b", "undo:a"},
			[]compCall{{"c", saga.StepFailed, false}, {"b", saga.StepDone, true}, {"a", saga.StepDone, true}}},
	}
	for _, tt := range tests {
		t.Run("fail at "+tt.failAt, func(t *testing.T) {
			rec := &recorder{}
			rmc := e.newRM(t)
			def, err := saga.Define(e.tm, rmc, "trip", fencedSteps(e.fence, rec, 0)...)
			if err != nil {
				t.Fatal(err)
			}
			start(t, rmc)
			var xid string
			ctx := context.Background()
			out, err := def.RunWith(ctx, tm.Options{}, Trip{User: "ann", FailAt: tt.failAt})
			var se *saga.StepError
			switch {
			case tt.failAt == "" && err != nil:
				t.Fatalf("Run() error = %v", err)
			case tt.failAt != "" && !errors.As(err, &se):
				t.Fatalf("Run() error = %v, want a *StepError", err)
			case tt.failAt != "":
				if se.Step != tt.failAt || !errors.Is(err, errStep) {
					t.Errorf("StepError = %+v, want step %s wrapping %v", se, tt.failAt, errStep)
				}
				xid = se.XID
			default:
				if want := []string{"a", "b", "c"}; !slices.Equal(out.Done, want) {
					t.Errorf("Run() state Done = %v, want %v", out.Done, want)
				}
				xid = lastXID(t, e)
			}
			g := e.finalStatus(xid)
			if got := g.GetStatus(); got != tt.wantStatus {
				t.Errorf("status = %v, want %v (reason %q)", got, tt.wantStatus, g.GetReason())
			}
			if got := e.effects(xid); !slices.Equal(got, tt.wantEffects) {
				t.Errorf("effects = %q, want %q", got, tt.wantEffects)
			}
			if got := rec.get(); !slices.Equal(got, tt.wantCalls) {
				t.Errorf("compensations = %+v, want %+v", got, tt.wantCalls)
			}
			if tt.failAt == "" {
				// Commit marks the fence rows finished, for cleanup.
				for id := int64(1); id <= 3; id++ {
					if got := fenceStatus(t, e.fence, xid, id); got != fence.StatusConfirmed {
						t.Errorf("fence of branch %d = %v, want %v", id, got, fence.StatusConfirmed)
					}
				}
			}
		})
	}
}

// lastXID finds the XID of the only effects written by a test's saga.
func lastXID(t *testing.T, e *env) string {
	t.Helper()
	var xid string
	if err := e.db.QueryRow(`SELECT xid FROM effects ORDER BY id DESC LIMIT 1`).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	return xid
}

// TestPlainSaga runs unfenced steps and checks what each compensation is
// given: the input always, the output of steps that completed, the error
// of the step that failed.
func TestPlainSaga(t *testing.T) {
	e := newEnv(t)
	type seen struct {
		Step   string
		Status saga.StepStatus
		Input  []string
		Output []string // nil if no output
		Err    string
	}
	var mu sync.Mutex
	var got []seen
	var xid string
	step := func(name string) saga.StepDef[Trip] {
		return saga.Step(name,
			func(ctx context.Context, t Trip) (Trip, error) {
				info, _ := saga.StepFrom(ctx)
				mu.Lock()
				xid = info.XID
				mu.Unlock()
				if t.FailAt == name {
					return t, errStep
				}
				t.Done = append(t.Done, name)
				return t, nil
			},
			func(ctx context.Context, r saga.Record[Trip]) error {
				s := seen{Step: r.Step, Status: r.Status, Input: r.Input.Done, Err: r.Err}
				if r.Output != nil {
					s.Output = r.Output.Done
					if s.Output == nil {
						s.Output = []string{}
					}
				}
				mu.Lock()
				got = append(got, s)
				mu.Unlock()
				return nil
			})
	}
	rmc := e.newRM(t)
	def, err := saga.Define(e.tm, rmc, "plain", step("x"), step("y"), step("z"))
	if err != nil {
		t.Fatal(err)
	}
	start(t, rmc)
	_, err = def.Run(context.Background(), Trip{FailAt: "z"})
	if !errors.Is(err, errStep) {
		t.Fatalf("Run() error = %v, want %v", err, errStep)
	}
	e.finalStatus(xid)
	want := []seen{
		{Step: "z", Status: saga.StepFailed, Input: []string{"x", "y"}, Err: "step failed on purpose"},
		{Step: "y", Status: saga.StepDone, Input: []string{"x"}, Output: []string{"x", "y"}},
		{Step: "x", Status: saga.StepDone, Input: nil, Output: []string{"x"}},
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("compensations saw\n%+v\nwant\n%+v", got, want)
	}
}

// TestStepRetry checks the per-step retry policy of actions.
func TestStepRetry(t *testing.T) {
	e := newEnv(t)
	errFlaky := errors.New("flight service unavailable")
	tests := []struct {
		name         string
		policy       saga.RetryPolicy
		errs         []error // returned by successive attempts; then nil
		wantErr      error
		wantAttempts int
	}{
		{"transient then success", saga.RetryPolicy{Attempts: 3}, []error{errFlaky, errFlaky}, nil, 3},
		{"attempts spent", saga.RetryPolicy{Attempts: 2}, []error{errFlaky, errFlaky}, errFlaky, 2},
		{"no retry by default", saga.RetryPolicy{}, []error{errFlaky}, errFlaky, 1},
		{"permanent not retried", saga.RetryPolicy{Attempts: 5}, []error{rm.Permanent(errFlaky)}, errFlaky, 1},
		{"custom retryable", saga.RetryPolicy{Attempts: 5, Retryable: func(error) bool { return false }}, []error{errFlaky}, errFlaky, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			attempts := 0
			var lastAttempt int
			rmc := e.newRM(t)
			def, err := saga.Define(e.tm, rmc, "retry",
				saga.Step("flaky", func(ctx context.Context, t Trip) (Trip, error) {
					info, _ := saga.StepFrom(ctx)
					mu.Lock()
					defer mu.Unlock()
					attempts++
					lastAttempt = info.Attempt
					if attempts <= len(tt.errs) {
						return t, tt.errs[attempts-1]
					}
					return t, nil
				}, nil, saga.WithRetry(tt.policy)))
			if err != nil {
				t.Fatal(err)
			}
			start(t, rmc)
			_, err = def.Run(context.Background(), Trip{})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Run() error = %v, want %v", err, tt.wantErr)
			}
			var se *saga.StepError
			if err != nil && (!errors.As(err, &se) || se.Attempts != tt.wantAttempts) {
				t.Errorf("StepError = %+v, want Attempts %d", se, tt.wantAttempts)
			}
			mu.Lock()
			defer mu.Unlock()
			if attempts != tt.wantAttempts || lastAttempt != tt.wantAttempts {
				t.Errorf("attempts = %d (last StepInfo.Attempt %d), want %d", attempts, lastAttempt, tt.wantAttempts)
			}
		})
	}
}

// TestCompensationOutcomes: a compensation that fails transiently is
// retried by the TC until it succeeds; a permanent failure parks the saga
// with the reason, and compensation stops there (the steps before it stay
// uncompensated until an operator resumes).
func TestCompensationOutcomes(t *testing.T) {
	e := newEnv(t)
	errFlaky := errors.New("hotel service unavailable")
	errFatal := errors.New("booking cannot be cancelled any more")
	tests := []struct {
		name       string
		results    []error // of successive compensations of step "hotel"
		wantStatus xactpb.GlobalStatus
		wantParked bool
		wantReason string
		wantCalls  []string
	}{
		{"unknown then done", []error{errFlaky, errFlaky}, xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED, false, "",
			[]string{"hotel", "hotel", "hotel", "flight"}},
		{"permanent parks", []error{rm.Permanent(errFatal)}, xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_FAILED, true, errFatal.Error(),
			[]string{"hotel"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var calls []string
			n := 0
			comp := func(ctx context.Context, r saga.Record[Trip]) error {
				mu.Lock()
				defer mu.Unlock()
				calls = append(calls, r.Step)
				if r.Step != "hotel" {
					return nil
				}
				n++
				if n <= len(tt.results) {
					return tt.results[n-1]
				}
				return nil
			}
			ok := func(ctx context.Context, t Trip) (Trip, error) { return t, nil }
			rmc := e.newRM(t)
			def, err := saga.Define(e.tm, rmc, "outcomes",
				saga.Step("flight", ok, comp),
				saga.Step("hotel", ok, comp),
				saga.Step("car", func(ctx context.Context, t Trip) (Trip, error) { return t, errStep }, nil),
			)
			if err != nil {
				t.Fatal(err)
			}
			start(t, rmc)
			_, err = def.Run(context.Background(), Trip{})
			var se *saga.StepError
			if !errors.As(err, &se) {
				t.Fatalf("Run() error = %v, want a *StepError", err)
			}
			g := e.finalStatus(se.XID)
			if got := g.GetStatus(); got != tt.wantStatus {
				t.Errorf("status = %v, want %v", got, tt.wantStatus)
			}
			if got := g.GetParked(); got != tt.wantParked {
				t.Errorf("parked = %v, want %v", got, tt.wantParked)
			}
			if !strings.Contains(g.GetReason(), tt.wantReason) {
				t.Errorf("reason = %q, want it to contain %q", g.GetReason(), tt.wantReason)
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(calls, tt.wantCalls) {
				t.Errorf("compensations = %q, want %q", calls, tt.wantCalls)
			}
		})
	}
}

func TestDefineErrors(t *testing.T) {
	e := newEnv(t)
	rmc := e.newRM(t)
	ok := func(ctx context.Context, t Trip) (Trip, error) { return t, nil }
	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"nil rm", func() error { _, err := saga.Define(e.tm, nil, "s", saga.Step("a", ok, nil)); return err }, saga.ErrInvalidArgument},
		{"bad saga name", func() error { _, err := saga.Define(e.tm, rmc, "a/b", saga.Step("a", ok, nil)); return err }, saga.ErrInvalidArgument},
		{"no steps", func() error { _, err := saga.Define[Trip](e.tm, rmc, "s"); return err }, saga.ErrInvalidArgument},
		{"bad step name", func() error { _, err := saga.Define(e.tm, rmc, "s", saga.Step("a b", ok, nil)); return err }, saga.ErrInvalidArgument},
		{"duplicate step", func() error {
			_, err := saga.Define(e.tm, rmc, "s", saga.Step("a", ok, nil), saga.Step("a", ok, nil))
			return err
		}, saga.ErrInvalidArgument},
		{"nil action", func() error { _, err := saga.Define(e.tm, rmc, "s", saga.Step[Trip]("a", nil, nil)); return err }, saga.ErrInvalidArgument},
		{"nil fence", func() error {
			_, err := saga.Define(e.tm, rmc, "s", saga.FencedStep[Trip]("a", nil, nil, nil))
			return err
		}, saga.ErrInvalidArgument},
		{"zero step", func() error { _, err := saga.Define(e.tm, rmc, "s", saga.StepDef[Trip]{}); return err }, saga.ErrInvalidArgument},
		{"bad retry", func() error {
			_, err := saga.Define(e.tm, rmc, "s", saga.Step("a", ok, nil, saga.WithRetry(saga.RetryPolicy{Attempts: -1})))
			return err
		}, saga.ErrInvalidArgument},
		{"run without manager", func() error {
			s, err := saga.Define(nil, rmc, "s", saga.Step("a", ok, nil))
			if err != nil {
				return err
			}
			_, err = s.Run(context.Background(), Trip{})
			return err
		}, saga.ErrNoManager},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
		})
	}
}
