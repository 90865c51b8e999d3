package tm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol"
)

var errBusiness = errors.New("business failed")

func TestDoInitiator(t *testing.T) {
	tests := []struct {
		name         string
		commit       []answer
		fnErr        error
		wantErr      []error
		wantCommit   int
		wantRollback int
	}{
		{"commit", nil, nil, nil, 1, 0},
		{"fn error rolls back", nil, errBusiness, []error{errBusiness}, 0, 1},
		{"commit answered rollback", []answer{{err: protocol.ToStatus(protocol.ErrTimedOut)}}, nil, []error{ErrRolledBack, protocol.ErrTimedOut}, 1, 0},
		{"commit unknown", []answer{{err: errUnavailable}}, nil, []error{ErrUnknownOutcome}, -1, 0},
		{"commit in progress is success", []answer{{st: sCommitRetrying}}, nil, nil, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTC()
			if tt.commit != nil {
				f.commit = script(tt.commit...)
			}
			m := New(serve(t, f, nil), fastOpts()...)
			var sawXID string
			err := m.Do(context.Background(), Options{Name: "t", Timeout: time.Minute}, func(ctx context.Context) error {
				sawXID, _ = XID(ctx)
				if _, ok := ctx.Deadline(); !ok {
					t.Error("fn's ctx has no deadline, want the global's timeout")
				}
				return tt.fnErr
			})
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Do() = %v, want nil", err)
			}
			for _, w := range tt.wantErr {
				if !errors.Is(err, w) {
					t.Errorf("Do() = %v, want wrapping %v", err, w)
				}
			}
			if sawXID != "fake:1" {
				t.Errorf("fn saw XID %q, want fake:1", sawXID)
			}
			if tt.wantCommit >= 0 && f.Calls("commit") != tt.wantCommit {
				t.Errorf("commits = %d, want %d", f.Calls("commit"), tt.wantCommit)
			}
			if f.Calls("rollback") != tt.wantRollback {
				t.Errorf("rollbacks = %d, want %d", f.Calls("rollback"), tt.wantRollback)
			}
		})
	}
}

// TestDoOutcomeNotMisread: when Do cannot confirm the rollback that fn's
// error asked for, its error must not match fn's error (a caller that
// checks its business error first would report a rollback that may not
// have happened); the business error is behind BusinessErr. The same for
// a commit whose outcome is unknown, and a rollback refused because the
// global committed.
func TestDoOutcomeNotMisread(t *testing.T) {
	tests := []struct {
		name         string
		commit       []answer
		rollback     []answer
		fnErr        error
		wantOutcome  error // ErrUnknownOutcome or ErrCommitted
		wantNot      error // must not match
		wantBusiness error
	}{
		{"rollback unreachable", nil, []answer{{err: errUnavailable}}, errBusiness, ErrUnknownOutcome, ErrCommitted, errBusiness},
		{"rollback gives no decision", nil, []answer{{st: sBegin}}, errBusiness, ErrUnknownOutcome, ErrCommitted, errBusiness},
		{"rollback refused: committed", nil, []answer{{err: protocol.ToStatus(protocol.ErrCommitted)}}, errBusiness, ErrCommitted, ErrUnknownOutcome, errBusiness},
		{"commit unreachable", []answer{{err: errUnavailable}}, nil, nil, ErrUnknownOutcome, ErrRolledBack, nil},
		{"commit not found", []answer{{err: protocol.ToStatus(protocol.ErrNotFound)}}, nil, nil, ErrUnknownOutcome, ErrRolledBack, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTC()
			if tt.commit != nil {
				f.commit = script(tt.commit...)
			}
			if tt.rollback != nil {
				f.rollback = script(tt.rollback...)
			}
			m := New(serve(t, f, nil), fastOpts()...)
			err := m.Do(context.Background(), Options{Name: "t"}, func(context.Context) error { return tt.fnErr })
			if !errors.Is(err, tt.wantOutcome) || errors.Is(err, tt.wantNot) {
				t.Fatalf("Do() = %v, want matching %v and not %v", err, tt.wantOutcome, tt.wantNot)
			}
			if errors.Is(err, errBusiness) {
				t.Errorf("Do() = %v matches fn's error, whose rollback is not confirmed", err)
			}
			var oe *OutcomeError
			if !errors.As(err, &oe) {
				t.Fatalf("Do() = %v (%T), want an *OutcomeError", err, err)
			}
			if oe.XID != "fake:1" || oe.BusinessErr() != tt.wantBusiness || oe.Cause == nil {
				t.Errorf("OutcomeError{XID: %q, Cause: %v, BusinessErr: %v}, want fake:1, a cause, %v", oe.XID, oe.Cause, oe.BusinessErr(), tt.wantBusiness)
			}
			if tt.fnErr != nil && !strings.Contains(err.Error(), tt.fnErr.Error()) {
				t.Errorf("Do() = %q, want fn's error in the text", err)
			}
		})
	}
}

// TestDoRolledBackIsBusinessErr: a rollback whose decision is durable
// returns fn's error itself; a decision answered with an in-progress or
// already-rolled-back status counts.
func TestDoRolledBackIsBusinessErr(t *testing.T) {
	for _, a := range []answer{{st: sRollbacked}, {st: sRollbacking}, {st: sTimeoutRB}, {err: protocol.ToStatus(protocol.ErrTimedOut)}, {err: protocol.ToStatus(protocol.ErrRolledBack)}} {
		f := newFakeTC()
		f.rollback = script(answer{err: errUnavailable}, a)
		m := New(serve(t, f, nil), fastOpts()...)
		err := m.Do(context.Background(), Options{}, func(context.Context) error { return errBusiness })
		if err != errBusiness {
			t.Errorf("rollback answered %v after a retry: Do() = %v, want fn's error as is", a, err)
		}
	}
}

func TestDoBeginFails(t *testing.T) {
	f := newFakeTC()
	f.begin = func(context.Context) (string, error) { return "", protocol.ToStatus(protocol.ErrTooLarge) }
	m := New(serve(t, f, nil), fastOpts()...)
	ran := false
	err := m.Do(context.Background(), Options{}, func(context.Context) error { ran = true; return nil })
	if !errors.Is(err, protocol.ErrTooLarge) || ran {
		t.Fatalf("Do() = %v (fn ran: %v), want protocol.ErrTooLarge and fn not run", err, ran)
	}
}

func TestDoPanic(t *testing.T) {
	f := newFakeTC()
	m := New(serve(t, f, nil), fastOpts()...)
	type boom struct{}
	func() {
		defer func() {
			if v := recover(); v != (boom{}) {
				t.Fatalf("recovered %v, want boom{}", v)
			}
		}()
		m.Do(context.Background(), Options{}, func(context.Context) error { panic(boom{}) })
		t.Fatal("Do returned after a panic")
	}()
	if f.Calls("rollback") != 1 || f.Calls("commit") != 0 {
		t.Errorf("rollbacks, commits = %d, %d, want 1, 0", f.Calls("rollback"), f.Calls("commit"))
	}
}

func TestDoPropagation(t *testing.T) {
	bg := context.Background()
	outer := WithXID(bg, "outer:1")
	tests := []struct {
		name      string
		prop      Propagation
		ctx       context.Context
		fnErr     error
		wantXID   string // "" means fn must see none; "-" means fn must not run
		wantErr   error
		wantBegin int
	}{
		{"required begins", Required, bg, nil, "fake:1", nil, 1},
		{"required joins", Required, outer, nil, "outer:1", nil, 0},
		{"required joiner returns fn error", Required, outer, errBusiness, "outer:1", errBusiness, 0},
		{"requires new without outer", RequiresNew, bg, nil, "fake:1", nil, 1},
		{"requires new suspends outer", RequiresNew, outer, nil, "fake:1", nil, 1},
		{"not supported without", NotSupported, bg, nil, "", nil, 0},
		{"not supported hides outer", NotSupported, outer, nil, "", nil, 0},
		{"supports joins", Supports, outer, nil, "outer:1", nil, 0},
		{"supports without", Supports, bg, nil, "", nil, 0},
		{"never without", Never, bg, nil, "", nil, 0},
		{"never with", Never, outer, nil, "-", ErrTransactionExists, 0},
		{"mandatory joins", Mandatory, outer, nil, "outer:1", nil, 0},
		{"mandatory without", Mandatory, bg, nil, "-", ErrNoTransaction, 0},
		{"unknown propagation", Propagation(42), bg, nil, "-", ErrInvalidOption, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTC()
			m := New(serve(t, f, nil), fastOpts()...)
			ran := false
			var saw string
			err := m.Do(tt.ctx, Options{Propagation: tt.prop}, func(ctx context.Context) error {
				ran = true
				saw, _ = XID(ctx)
				return tt.fnErr
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Do(%v) = %v, want %v", tt.prop, err, tt.wantErr)
			}
			if tt.wantXID == "-" {
				if ran {
					t.Fatalf("fn ran, want not run")
				}
			} else if saw != tt.wantXID {
				t.Errorf("fn saw XID %q, want %q", saw, tt.wantXID)
			}
			if got := f.Calls("begin"); got != tt.wantBegin {
				t.Errorf("begins = %d, want %d", got, tt.wantBegin)
			}
			// Only an initiator ends a transaction.
			if ends := f.Calls("commit") + f.Calls("rollback"); ends != tt.wantBegin {
				t.Errorf("commits+rollbacks = %d, want %d", ends, tt.wantBegin)
			}
		})
	}
}

func TestPropagationString(t *testing.T) {
	if got := RequiresNew.String(); got != "RequiresNew" {
		t.Errorf("RequiresNew.String() = %q", got)
	}
	if got := Propagation(-1).String(); got != "Propagation(-1)" {
		t.Errorf("Propagation(-1).String() = %q", got)
	}
}
