package protocol

import "github.com/xact-io/xact/protocol/xactpb"

// The families of global statuses, defined once for the TC, the clients
// and the stores. The numbers are Seata's (xact.proto).

// DecidedCommit reports whether s means that the commit decision is
// durable, whether or not phase two has finished: COMMITTING,
// COMMIT_RETRYING, ASYNC_COMMITTING, COMMITTED, and COMMIT_FAILED and
// COMMIT_RETRY_TIMEOUT (phase two is parked for an operator, but the
// decision stands and nothing will be compensated).
func DecidedCommit(s xactpb.GlobalStatus) bool {
	switch s {
	case xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTING,
		xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_RETRYING,
		xactpb.GlobalStatus_GLOBAL_STATUS_ASYNC_COMMITTING,
		xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED,
		xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_FAILED,
		xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_RETRY_TIMEOUT:
		return true
	}
	return false
}

// DecidedRollback reports whether s means that the rollback decision is
// durable, whether or not compensation has finished (every ROLLBACK* and
// TIMEOUT_ROLLBACK* status).
func DecidedRollback(s xactpb.GlobalStatus) bool {
	switch s {
	case xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKING,
		xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_RETRYING,
		xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACKING,
		xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACK_RETRYING,
		xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED,
		xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_FAILED,
		xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACKED,
		xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACK_FAILED,
		xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_RETRY_TIMEOUT:
		return true
	}
	return false
}

// TimedOut reports whether s is a rollback that the TC decided because
// the global passed its deadline (the TIMEOUT_ROLLBACK* statuses).
func TimedOut(s xactpb.GlobalStatus) bool {
	switch s {
	case xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACKING,
		xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACK_RETRYING,
		xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACKED,
		xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACK_FAILED:
		return true
	}
	return false
}

// Final reports whether s is a final status: nothing is left to do.
func Final(s xactpb.GlobalStatus) bool {
	switch s {
	case xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED,
		xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED,
		xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACKED,
		xactpb.GlobalStatus_GLOBAL_STATUS_FINISHED:
		return true
	}
	return false
}
