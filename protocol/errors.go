package protocol

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors shared by the TC and its clients. Each one crosses the wire
// as a gRPC status with a fixed code and an ErrorInfo whose reason is stable;
// FromStatus turns it back into the same sentinel, so errors.Is works on
// both sides.
var (
	// ErrNotFound: the XID is unknown to the TC (never begun, or finished
	// and forgotten).
	ErrNotFound = errors.New("xact: global transaction not found")
	// ErrBranchNotFound: the branch id is unknown within its global.
	ErrBranchNotFound = errors.New("xact: branch not found")
	// ErrNotBegin: the operation needs the global to be in Begin (register a
	// branch) and it is not.
	ErrNotBegin = errors.New("xact: global transaction is not in Begin")
	// ErrTimedOut: the global passed its timeout; it is being rolled back.
	ErrTimedOut = errors.New("xact: global transaction timed out")
	// ErrRolledBack: commit was asked of a global whose decision is rollback.
	ErrRolledBack = errors.New("xact: global transaction was rolled back")
	// ErrCommitted: rollback was asked of a global whose decision is commit.
	ErrCommitted = errors.New("xact: global transaction was committed")
	// ErrLockConflict: a row key is locked by another global transaction.
	// The concrete error is a *LockConflictError naming the key and holder.
	ErrLockConflict = errors.New("xact: global lock conflict")
	// ErrInvalidArgument: a malformed request.
	ErrInvalidArgument = errors.New("xact: invalid argument")
	// ErrTooLarge: a request exceeds a configured size limit.
	ErrTooLarge = errors.New("xact: request too large")
	// ErrUnauthenticated: the request lacks valid credentials.
	ErrUnauthenticated = errors.New("xact: unauthenticated")
	// ErrPermissionDenied: the credentials are valid but their role does
	// not admit to the call (a participant's token on the Admin service,
	// which needs the operator token). Refused before the handler runs:
	// nothing changed, and asking again with the same token is refused
	// again.
	ErrPermissionDenied = errors.New("xact: permission denied")
	// ErrShuttingDown: the TC is stopping; retry against it later.
	ErrShuttingDown = errors.New("xact: coordinator shutting down")
	// ErrCorrupt: the coordinator's store found damaged data for the
	// request (a record whose checksum fails, records that went missing).
	// Not retryable: the damage stays until an operator repairs the data
	// directory (docs/operations.md).
	ErrCorrupt = errors.New("xact: stored data is damaged")
)

// Domain is the ErrorInfo domain of every xact error.
const Domain = "xact.io"

type entry struct {
	err    error
	code   codes.Code
	reason string
}

// table is the one two-way mapping between sentinels and the wire.
var table = []entry{
	{ErrNotFound, codes.NotFound, "GLOBAL_NOT_FOUND"},
	{ErrBranchNotFound, codes.NotFound, "BRANCH_NOT_FOUND"},
	{ErrNotBegin, codes.FailedPrecondition, "GLOBAL_NOT_BEGIN"},
	{ErrTimedOut, codes.FailedPrecondition, "GLOBAL_TIMED_OUT"},
	{ErrRolledBack, codes.FailedPrecondition, "GLOBAL_ROLLED_BACK"},
	{ErrCommitted, codes.FailedPrecondition, "GLOBAL_COMMITTED"},
	{ErrLockConflict, codes.Aborted, "LOCK_CONFLICT"},
	{ErrInvalidArgument, codes.InvalidArgument, "INVALID_ARGUMENT"},
	{ErrTooLarge, codes.ResourceExhausted, "REQUEST_TOO_LARGE"},
	{ErrUnauthenticated, codes.Unauthenticated, "UNAUTHENTICATED"},
	{ErrPermissionDenied, codes.PermissionDenied, "PERMISSION_DENIED"},
	{ErrShuttingDown, codes.Unavailable, "SHUTTING_DOWN"},
	{ErrCorrupt, codes.DataLoss, "STORE_CORRUPT"},
}

// LockConflictError names the row key that could not be locked and the
// global transaction holding it. It matches ErrLockConflict with errors.Is.
type LockConflictError struct {
	Resource string
	Key      string
	Holder   string
	// HolderRollingBack is true when the holder's decision is rollback
	// and it has not finished (the TC reads the holder's status when it
	// answers). Its compensation of the row needs the database row lock
	// that the asking branch took when it wrote or locked the row, so
	// waiting for the global lock deadlocks until the waiter gives up: a
	// branch should give up at once.
	HolderRollingBack bool
}

func (e *LockConflictError) Error() string {
	if e.HolderRollingBack {
		return fmt.Sprintf("xact: global lock conflict on %s %q held by %s, which is rolling back", e.Resource, e.Key, e.Holder)
	}
	return fmt.Sprintf("xact: global lock conflict on %s %q held by %s", e.Resource, e.Key, e.Holder)
}

// Is reports whether target is ErrLockConflict.
func (e *LockConflictError) Is(target error) bool { return target == ErrLockConflict }

// ToStatus converts an error into the gRPC status error a handler returns.
// Errors outside the vocabulary become codes.Internal; context errors keep
// their gRPC meaning.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var lc *LockConflictError
	if errors.As(err, &lc) {
		md := map[string]string{"resource": lc.Resource, "key": lc.Key, "holder": lc.Holder}
		if lc.HolderRollingBack {
			md["holder_rolling_back"] = "true"
		}
		return withInfo(codes.Aborted, err.Error(), "LOCK_CONFLICT", md)
	}
	for _, e := range table {
		if errors.Is(err, e.err) {
			return withInfo(e.code, err.Error(), e.reason, nil)
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

func withInfo(c codes.Code, msg, reason string, md map[string]string) error {
	st := status.New(c, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: Domain, Metadata: md}); err == nil {
		st = d
	}
	return st.Err()
}

// FromStatus converts an error returned by a gRPC call back into the
// sentinel (or *LockConflictError) the server returned, wrapped so that the
// server's message is kept. Errors without an xact ErrorInfo (transport
// failures, deadlines) are returned unchanged: their outcome is unknown.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.GetDomain() != Domain {
			continue
		}
		if info.GetReason() == "LOCK_CONFLICT" {
			md := info.GetMetadata()
			return &LockConflictError{Resource: md["resource"], Key: md["key"], Holder: md["holder"],
				HolderRollingBack: md["holder_rolling_back"] == "true"}
		}
		for _, e := range table {
			if e.reason == info.GetReason() {
				return &remoteError{sentinel: e.err, msg: st.Message()}
			}
		}
	}
	return err
}

// remoteError carries the server's message and unwraps to the sentinel.
type remoteError struct {
	sentinel error
	msg      string
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// Retryable reports whether err (as returned by a client call, after
// FromStatus) means "outcome unknown, safe to ask again": transport failures,
// Unavailable, and deadlines. Errors from the vocabulary are answers, not
// unknowns.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrShuttingDown) {
		return true
	}
	for _, e := range table {
		if errors.Is(err, e.err) {
			return false
		}
	}
	if errors.Is(err, ErrLockConflict) {
		return false
	}
	st, ok := status.FromError(err)
	if !ok {
		return errors.Is(err, context.DeadlineExceeded)
	}
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Unknown, codes.Internal:
		return true
	}
	return false
}
