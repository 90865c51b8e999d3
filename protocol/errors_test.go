package protocol

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestErrorTable: every sentinel crosses the wire with its code and
// reason and comes back as itself, with the server's message; only
// ErrShuttingDown is retryable.
func TestErrorTable(t *testing.T) {
	tests := []struct {
		err       error
		code      codes.Code
		reason    string
		retryable bool
	}{
		{ErrNotFound, codes.NotFound, "GLOBAL_NOT_FOUND", false},
		{ErrBranchNotFound, codes.NotFound, "BRANCH_NOT_FOUND", false},
		{ErrNotBegin, codes.FailedPrecondition, "GLOBAL_NOT_BEGIN", false},
		{ErrTimedOut, codes.FailedPrecondition, "GLOBAL_TIMED_OUT", false},
		{ErrRolledBack, codes.FailedPrecondition, "GLOBAL_ROLLED_BACK", false},
		{ErrCommitted, codes.FailedPrecondition, "GLOBAL_COMMITTED", false},
		{ErrLockConflict, codes.Aborted, "LOCK_CONFLICT", false},
		{ErrInvalidArgument, codes.InvalidArgument, "INVALID_ARGUMENT", false},
		{ErrTooLarge, codes.ResourceExhausted, "REQUEST_TOO_LARGE", false},
		{ErrUnauthenticated, codes.Unauthenticated, "UNAUTHENTICATED", false},
		{ErrPermissionDenied, codes.PermissionDenied, "PERMISSION_DENIED", false},
		{ErrShuttingDown, codes.Unavailable, "SHUTTING_DOWN", true},
		{ErrCorrupt, codes.DataLoss, "STORE_CORRUPT", false},
	}
	if len(tests) != len(table) {
		t.Errorf("the test covers %d sentinels, the table has %d", len(tests), len(table))
	}
	for _, tt := range tests {
		sent := fmt.Errorf("%w: what the server says", tt.err)
		wire := ToStatus(sent)
		st, _ := status.FromError(wire)
		if st.Code() != tt.code || reason(st) != tt.reason {
			t.Errorf("ToStatus(%v) = %v, reason %q; want %v, reason %q", sent, st.Code(), reason(st), tt.code, tt.reason)
		}
		got := FromStatus(wire)
		// A lock conflict is rebuilt from its ErrorInfo's metadata
		// (TestLockConflictRoundTrip), not from the message.
		if !errors.Is(got, tt.err) || (tt.err != ErrLockConflict && got.Error() != sent.Error()) {
			t.Errorf("FromStatus(ToStatus(%v)) = %v; want an error that Is %v, with the server's message", sent, got, tt.err)
		}
		if r := Retryable(got); r != tt.retryable {
			t.Errorf("Retryable(%v) = %v, want %v", got, r, tt.retryable)
		}
	}
}

// TestLockConflictRoundTrip: a *LockConflictError comes back with the key,
// the holder and whether the holder is rolling back.
func TestLockConflictRoundTrip(t *testing.T) {
	for _, want := range []*LockConflictError{
		{Resource: "db", Key: "t:1", Holder: "tc-1:42"},
		{Resource: "db", Key: "t:2", Holder: "tc-1:43", HolderRollingBack: true},
	} {
		got := FromStatus(ToStatus(want))
		var lc *LockConflictError
		if !errors.As(got, &lc) || *lc != *want || !errors.Is(got, ErrLockConflict) || Retryable(got) {
			t.Errorf("FromStatus(ToStatus(%+v)) = %+v; want the same, not retryable", want, got)
		}
	}
}

// TestPermissionDeniedFromStatus: a PermissionDenied status with the
// PERMISSION_DENIED reason (and metadata, as the TC sent it before the
// sentinel existed) is ErrPermissionDenied and not retryable; one without
// an xact ErrorInfo stays a status error, also not retryable.
func TestPermissionDeniedFromStatus(t *testing.T) {
	st := status.New(codes.PermissionDenied, "xact: permission denied: /xact.v1.Admin/ListGlobals is for operators")
	st, err := st.WithDetails(&errdetails.ErrorInfo{Reason: "PERMISSION_DENIED", Domain: Domain,
		Metadata: map[string]string{"method": "/xact.v1.Admin/ListGlobals", "role": "operator"}})
	if err != nil {
		t.Fatal(err)
	}
	got := FromStatus(st.Err())
	if !errors.Is(got, ErrPermissionDenied) || errors.Is(got, ErrUnauthenticated) {
		t.Errorf("FromStatus(%v) = %v; want ErrPermissionDenied", st.Err(), got)
	}
	if Retryable(got) {
		t.Errorf("Retryable(%v) = true, want false", got)
	}
	bare := status.Error(codes.PermissionDenied, "denied by a proxy")
	if got := FromStatus(bare); errors.Is(got, ErrPermissionDenied) || Retryable(got) {
		t.Errorf("FromStatus(%v) = %v (Retryable %v); want the status error unchanged, not retryable", bare, got, Retryable(got))
	}
}

// TestToStatusContext: context errors keep their gRPC codes; anything
// outside the vocabulary is Internal.
func TestToStatusContext(t *testing.T) {
	tests := []struct {
		err  error
		want codes.Code
	}{
		{context.Canceled, codes.Canceled},
		{fmt.Errorf("waiting: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{errors.New("disk on fire"), codes.Internal},
		{nil, codes.OK},
	}
	for _, tt := range tests {
		if got := status.Code(ToStatus(tt.err)); got != tt.want {
			t.Errorf("status.Code(ToStatus(%v)) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func reason(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == Domain {
			return info.GetReason()
		}
	}
	return ""
}
