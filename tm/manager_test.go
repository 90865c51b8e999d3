package tm

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
)

const (
	sCommitted      = xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED
	sCommitting     = xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTING
	sAsync          = xactpb.GlobalStatus_GLOBAL_STATUS_ASYNC_COMMITTING
	sCommitRetrying = xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_RETRYING
	sRollbacked     = xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED
	sRollbacking    = xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKING
	sTimeoutRB      = xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACKING
	sBegin          = xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN
	sFinished       = xactpb.GlobalStatus_GLOBAL_STATUS_FINISHED
	sUnknown        = xactpb.GlobalStatus_GLOBAL_STATUS_UNKNOWN
)

var errUnavailable = status.Error(codes.Unavailable, "tc down")

// answers scripts a fake RPC: the n-th call gets the n-th answer, and the
// last answer repeats.
type answer struct {
	st  xactpb.GlobalStatus
	err error
}

func script(as ...answer) func(n int) (xactpb.GlobalStatus, error) {
	return func(n int) (xactpb.GlobalStatus, error) {
		if n > len(as) {
			n = len(as)
		}
		a := as[n-1]
		return a.st, a.err
	}
}

// fastOpts keeps retry tests short.
func fastOpts() []Option {
	return []Option{WithBackoff(time.Millisecond, 5*time.Millisecond), WithDecisionTimeout(300 * time.Millisecond), WithRPCTimeout(time.Second)}
}

func TestCommit(t *testing.T) {
	tests := []struct {
		name      string
		answers   []answer
		want      xactpb.GlobalStatus
		wantErr   []error // every one must match with errors.Is
		wantCalls int     // 0: don't check
	}{
		{"committed", []answer{{st: sCommitted}}, sCommitted, nil, 1},
		{"committing counts", []answer{{st: sCommitting}}, sCommitting, nil, 1},
		{"async committing counts", []answer{{st: sAsync}}, sAsync, nil, 1},
		{"commit retrying counts", []answer{{st: sCommitRetrying}}, sCommitRetrying, nil, 1},
		{"answered rollbacked", []answer{{st: sRollbacked}}, sRollbacked, []error{ErrRolledBack}, 1},
		{"answered timeout rollbacking", []answer{{st: sTimeoutRB}}, sTimeoutRB, []error{ErrRolledBack}, 1},
		{"error timed out", []answer{{err: protocol.ToStatus(protocol.ErrTimedOut)}}, sUnknown, []error{ErrRolledBack, protocol.ErrTimedOut}, 1},
		{"error rolled back", []answer{{err: protocol.ToStatus(protocol.ErrRolledBack)}}, sUnknown, []error{ErrRolledBack, protocol.ErrRolledBack}, 1},
		{"error committed is success", []answer{{err: protocol.ToStatus(protocol.ErrCommitted)}}, sCommitted, nil, 1},
		{"unavailable then committed", []answer{{err: errUnavailable}, {err: errUnavailable}, {st: sCommitted}}, sCommitted, nil, 3},
		{"shutting down then committed", []answer{{err: protocol.ToStatus(protocol.ErrShuttingDown)}, {st: sCommitting}}, sCommitting, nil, 2},
		{"always unavailable", []answer{{err: errUnavailable}}, sUnknown, []error{ErrUnknownOutcome}, 0},
		{"not found", []answer{{err: protocol.ToStatus(protocol.ErrNotFound)}}, sUnknown, []error{ErrUnknownOutcome, protocol.ErrNotFound}, 1},
		{"unavailable then not found", []answer{{err: errUnavailable}, {err: protocol.ToStatus(protocol.ErrNotFound)}}, sUnknown, []error{ErrUnknownOutcome, protocol.ErrNotFound}, 2},
		{"answered begin", []answer{{st: sBegin}}, sBegin, []error{ErrUnknownOutcome}, 1},
		{"answered finished", []answer{{st: sFinished}}, sFinished, []error{ErrUnknownOutcome}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTC()
			f.commit = script(tt.answers...)
			m := New(serve(t, f, nil), fastOpts()...)
			got, err := m.Commit(context.Background(), "tc1:1")
			if got != tt.want {
				t.Errorf("Commit() status = %v, want %v", got, tt.want)
			}
			if tt.wantErr == nil && err != nil {
				t.Errorf("Commit() error = %v, want nil", err)
			}
			for _, w := range tt.wantErr {
				if !errors.Is(err, w) {
					t.Errorf("Commit() error = %v, want wrapping %v", err, w)
				}
			}
			if errors.Is(err, ErrRolledBack) && errors.Is(err, ErrUnknownOutcome) {
				t.Errorf("Commit() error = %v wraps both ErrRolledBack and ErrUnknownOutcome", err)
			}
			if tt.wantCalls != 0 && f.Calls("commit") != tt.wantCalls {
				t.Errorf("Commit RPCs = %d, want %d", f.Calls("commit"), tt.wantCalls)
			}
		})
	}
}

func TestRollback(t *testing.T) {
	tests := []struct {
		name    string
		answers []answer
		want    xactpb.GlobalStatus
		wantErr []error
	}{
		{"rollbacked", []answer{{st: sRollbacked}}, sRollbacked, nil},
		{"rollbacking counts", []answer{{st: sRollbacking}}, sRollbacking, nil},
		{"already timed out", []answer{{err: protocol.ToStatus(protocol.ErrTimedOut)}}, sTimeoutRB, nil},
		{"already rolled back", []answer{{err: protocol.ToStatus(protocol.ErrRolledBack)}}, sRollbacking, nil},
		{"committed", []answer{{err: protocol.ToStatus(protocol.ErrCommitted)}}, sUnknown, []error{ErrCommitted, protocol.ErrCommitted}},
		{"answered committed", []answer{{st: sCommitted}}, sCommitted, []error{ErrCommitted}},
		{"unavailable then rollbacked", []answer{{err: errUnavailable}, {st: sRollbacked}}, sRollbacked, nil},
		{"always unavailable", []answer{{err: errUnavailable}}, sUnknown, []error{ErrUnknownOutcome}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTC()
			f.rollback = script(tt.answers...)
			m := New(serve(t, f, nil), fastOpts()...)
			got, err := m.Rollback(context.Background(), "tc1:1")
			if got != tt.want {
				t.Errorf("Rollback() status = %v, want %v", got, tt.want)
			}
			if tt.wantErr == nil && err != nil {
				t.Errorf("Rollback() error = %v, want nil", err)
			}
			for _, w := range tt.wantErr {
				if !errors.Is(err, w) {
					t.Errorf("Rollback() error = %v, want wrapping %v", err, w)
				}
			}
		})
	}
}

// TestCommitCancelledCaller: a caller whose context is already cancelled
// still gets its commit asked and answered.
func TestCommitCancelledCaller(t *testing.T) {
	f := newFakeTC()
	f.commit = script(answer{err: errUnavailable}, answer{st: sCommitted})
	m := New(serve(t, f, nil), fastOpts()...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if st, err := m.Commit(ctx, "tc1:1"); err != nil || st != sCommitted {
		t.Fatalf("Commit(cancelled ctx) = %v, %v, want %v, nil", st, err, sCommitted)
	}
	if got := f.Calls("commit"); got != 2 {
		t.Errorf("Commit RPCs = %d, want 2", got)
	}
}

// TestBeginNotRetried: Begin is not safe to repeat, so an ambiguous failure
// is returned after one attempt.
func TestBeginNotRetried(t *testing.T) {
	for _, err := range []error{errUnavailable, status.Error(codes.Internal, "boom"), protocol.ToStatus(protocol.ErrShuttingDown)} {
		f := newFakeTC()
		f.begin = func(context.Context) (string, error) { return "", err }
		m := New(serve(t, f, nil), fastOpts()...)
		ctx := context.Background()
		got, xid, berr := m.Begin(ctx, "t", time.Second)
		if berr == nil || xid != "" || got != ctx {
			t.Fatalf("Begin() = %v, %q, %v, want the caller's ctx, \"\", error", got, xid, berr)
		}
		if n := f.Calls("begin"); n != 1 {
			t.Errorf("Begin RPCs after %v = %d, want 1", err, n)
		}
	}
}

func TestBeginBadXIDFromTC(t *testing.T) {
	f := newFakeTC()
	f.begin = func(context.Context) (string, error) { return "", nil }
	m := New(serve(t, f, nil), fastOpts()...)
	if _, _, err := m.Begin(context.Background(), "t", 0); !errors.Is(err, ErrInvalidXID) {
		t.Fatalf("Begin() error = %v, want ErrInvalidXID", err)
	}
}

func TestStatusRetries(t *testing.T) {
	f := newFakeTC()
	f.status = script(answer{err: errUnavailable}, answer{st: sCommitting})
	m := New(serve(t, f, nil), fastOpts()...)
	if st, err := m.Status(context.Background(), "tc1:1"); err != nil || st != sCommitting {
		t.Fatalf("Status() = %v, %v, want %v, nil", st, err, sCommitting)
	}
	f.status = script(answer{err: protocol.ToStatus(protocol.ErrNotFound)})
	if _, err := m.Status(context.Background(), "tc1:1"); !errors.Is(err, protocol.ErrNotFound) {
		t.Fatalf("Status() error = %v, want protocol.ErrNotFound", err)
	}
}

func TestOptions(t *testing.T) {
	conn := serve(t, newFakeTC(), nil)
	tests := []struct {
		name string
		conn bool
		opts []Option
		ok   bool
	}{
		{"defaults", true, nil, true},
		{"all valid", true, []Option{WithLogger(discardLogger()), WithDefaultTimeout(time.Second), WithRPCTimeout(time.Second), WithDecisionTimeout(time.Second), WithDecisionAttemptTimeout(time.Second), WithBackoff(time.Millisecond, time.Second), nil}, true},
		{"nil conn", false, nil, false},
		{"nil logger", true, []Option{WithLogger(nil)}, false},
		{"negative default timeout", true, []Option{WithDefaultTimeout(-1)}, false},
		{"zero rpc timeout", true, []Option{WithRPCTimeout(0)}, false},
		{"zero decision timeout", true, []Option{WithDecisionTimeout(0)}, false},
		{"zero decision attempt timeout", true, []Option{WithDecisionAttemptTimeout(0)}, false},
		{"backoff max < base", true, []Option{WithBackoff(time.Second, time.Millisecond)}, false},
		{"backoff zero", true, []Option{WithBackoff(0, time.Millisecond)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m *Manager
			if tt.conn {
				m = New(conn, tt.opts...)
			} else {
				m = New(nil, tt.opts...)
			}
			if got := m.Err() == nil; got != tt.ok {
				t.Fatalf("New().Err() = %v, want ok=%v", m.Err(), tt.ok)
			}
			if tt.ok {
				return
			}
			ctx := context.Background()
			if _, _, err := m.Begin(ctx, "t", 0); !errors.Is(err, ErrInvalidOption) {
				t.Errorf("Begin() error = %v, want ErrInvalidOption", err)
			}
			if _, err := m.Commit(ctx, "tc1:1"); !errors.Is(err, ErrInvalidOption) {
				t.Errorf("Commit() error = %v, want ErrInvalidOption", err)
			}
			if err := m.Do(ctx, Options{}, func(context.Context) error { t.Error("fn ran"); return nil }); !errors.Is(err, ErrInvalidOption) {
				t.Errorf("Do() error = %v, want ErrInvalidOption", err)
			}
		})
	}
}

func TestDialOptions(t *testing.T) {
	if _, err := Dial("127.0.0.1:1", WithRPCTimeout(-1)); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("Dial(bad option) error = %v, want ErrInvalidOption", err)
	}
	m, err := Dial("127.0.0.1:1")
	if err != nil {
		t.Fatalf("Dial() error = %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close() error = %v", err)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestZeroManager(t *testing.T) {
	var m Manager
	if _, _, err := m.Begin(context.Background(), "t", 0); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("zero Manager Begin() = %v, want ErrInvalidOption", err)
	}
	if _, err := m.Rollback(context.Background(), "x:1"); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("zero Manager Rollback() = %v, want ErrInvalidOption", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("zero Manager Close() = %v", err)
	}
}
