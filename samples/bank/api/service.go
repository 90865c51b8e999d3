package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/rm/saga"
	"github.com/xact-io/xact/samples/bank/bankpb"
	"github.com/xact-io/xact/tm"
)

const (
	// txTimeout is how long a transfer may stay undecided before the TC
	// rolls it back by itself (if this process dies halfway, for example).
	txTimeout = 30 * time.Second
	// maxHold caps TransferRequest.hold_ms, well below txTimeout.
	maxHold = 10 * time.Second
)

// errForced is the failure a TransferRequest with fail set asks for.
var errForced = errors.New("forced failure after every participant did its work (fail=true)")

type service struct {
	bankpb.UnimplementedBankServer
	tm      *tm.Manager
	account bankpb.AccountClient
	ledger  bankpb.LedgerClient
	saga    *saga.Saga[transferState]
	log     *slog.Logger
}

// Transfer runs one transfer as a global transaction.
func (s *service) Transfer(ctx context.Context, req *bankpb.TransferRequest) (*bankpb.TransferResponse, error) {
	if _, ok := tm.XID(ctx); ok {
		// With an XID in the metadata, Do would join the caller's global
		// transaction, and the caller, not Transfer, would decide it.
		return nil, status.Error(codes.FailedPrecondition, "Transfer begins its own global transaction; call it outside one")
	}
	t := &bankpb.Transfer{From: req.GetFrom(), To: req.GetTo(), Amount: req.GetAmount()}
	if err := t.Validate(); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	hold := time.Duration(req.GetHoldMs()) * time.Millisecond
	if hold < 0 || hold > maxHold {
		return nil, status.Errorf(codes.InvalidArgument, "hold_ms must be between 0 and %d", maxHold.Milliseconds())
	}
	var work func(ctx context.Context, t *bankpb.Transfer) error
	switch req.GetMode() {
	case bankpb.Mode_MODE_AT:
		work = s.transferAT
	case bankpb.Mode_MODE_TCC:
		work = s.transferTCC
	case bankpb.Mode_MODE_SAGA:
		work = s.transferSaga
	default:
		return nil, status.Errorf(codes.InvalidArgument, "unknown mode %v", req.GetMode())
	}
	mode := strings.ToLower(strings.TrimPrefix(req.GetMode().String(), "MODE_"))

	// Do begins a global transaction and runs the function with its XID in
	// ctx. Everything the function calls with that ctx joins it: the
	// gRPC calls carry the XID to the other services, which register their
	// branches with the TC. When the function returns nil, Do commits;
	// when it returns an error, Do rolls back, and the TC has every branch
	// undone (AT: undo logs, TCC: Cancel, saga: compensations).
	var xid string
	err := s.tm.Do(ctx, tm.Options{Name: "transfer-" + mode, Timeout: txTimeout}, func(ctx context.Context) error {
		xid, _ = tm.XID(ctx)
		s.log.InfoContext(ctx, "transfer begun", "xid", xid, "mode", mode, "from", t.From, "to", t.To, "amount", t.Amount)
		if err := work(ctx, t); err != nil {
			return err
		}
		if hold > 0 {
			// Keep the transaction open, so that `xact tx show XID`
			// shows its branches and the row locks they hold.
			select {
			case <-time.After(hold):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if req.GetFail() {
			return errForced
		}
		return nil
	})

	resp := &bankpb.TransferResponse{Xid: xid}
	switch {
	case err == nil:
		resp.Outcome = bankpb.Outcome_OUTCOME_COMMITTED
	case xid == "":
		// Begin failed: there is no transaction, and nothing was done.
		return nil, status.Errorf(codes.Unavailable, "begin global transaction: %v", err)
	case errors.Is(err, tm.ErrUnknownOutcome):
		// Never guess: the TC decides and finishes it either way.
		resp.Outcome, resp.Reason = bankpb.Outcome_OUTCOME_UNKNOWN, err.Error()
	default:
		// The function failed and the rollback went through, or the
		// commit turned out to be a rollback (tm.ErrRolledBack: the
		// transaction timed out, or a branch reported a failure).
		resp.Outcome, resp.Reason = bankpb.Outcome_OUTCOME_ROLLED_BACK, err.Error()
	}
	s.log.InfoContext(ctx, "transfer ended", "xid", xid, "outcome", resp.Outcome, "reason", resp.Reason)
	return resp, nil
}

// transferAT: both services write through their AT data sources; each
// call's local transaction becomes a branch.
func (s *service) transferAT(ctx context.Context, t *bankpb.Transfer) error {
	if _, err := s.account.Move(ctx, t); err != nil {
		return fmt.Errorf("account: %w", err)
	}
	if _, err := s.ledger.Post(ctx, t); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

// transferTCC: the account service is still AT; the ledger reserves a
// pending entry as the Try of a TCC resource, which the TC confirms or
// cancels. One global transaction may mix modes freely.
func (s *service) transferTCC(ctx context.Context, t *bankpb.Transfer) error {
	if _, err := s.account.Move(ctx, t); err != nil {
		return fmt.Errorf("account: %w", err)
	}
	if _, err := s.ledger.Reserve(ctx, t); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

// transferState is the saga's state. The TC keeps it as JSON with each
// step, so that a compensation gets it back, possibly in another process.
type transferState struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Amount int64  `json:"amount"`
}

func (t transferState) pb() *bankpb.Transfer {
	return &bankpb.Transfer{From: t.From, To: t.To, Amount: t.Amount}
}

// transferSaga runs the saga. ctx already carries Transfer's global
// transaction, so the saga joins it (propagation Required) instead of
// beginning its own, and Transfer's Do decides: each step is a branch.
func (s *service) transferSaga(ctx context.Context, t *bankpb.Transfer) error {
	_, err := s.saga.Run(ctx, transferState{From: t.GetFrom(), To: t.GetTo(), Amount: t.GetAmount()})
	return err
}

// moveStep is the saga's first action. Run has registered the step as a
// branch already; the request names it, and the account service fences
// its work with it.
func (s *service) moveStep(ctx context.Context, t transferState) (transferState, error) {
	info, _ := saga.StepFrom(ctx)
	_, err := s.account.MoveStep(ctx, &bankpb.Step{Xid: info.XID, BranchId: info.BranchID, Transfer: t.pb()})
	return t, err
}

// compensateMove undoes moveStep. The TC pushes it to this process's RM
// after a rollback decision, in reverse order of the steps, and retries it
// until it succeeds; ctx carries no XID (this runs outside the global
// transaction), so the request names the branch.
func (s *service) compensateMove(ctx context.Context, r saga.Record[transferState]) error {
	_, err := s.account.CompensateMove(ctx, &bankpb.Step{Xid: r.XID, BranchId: r.BranchID, Transfer: r.Input.pb()})
	return compensationError(err)
}

// postStep is the saga's second action.
func (s *service) postStep(ctx context.Context, t transferState) (transferState, error) {
	info, _ := saga.StepFrom(ctx)
	_, err := s.ledger.PostStep(ctx, &bankpb.Step{Xid: info.XID, BranchId: info.BranchID, Transfer: t.pb()})
	return t, err
}

// compensatePost undoes postStep.
func (s *service) compensatePost(ctx context.Context, r saga.Record[transferState]) error {
	_, err := s.ledger.CompensatePost(ctx, &bankpb.Step{Xid: r.XID, BranchId: r.BranchID, Transfer: r.Input.pb()})
	return compensationError(err)
}

// compensationError tells the TC what a failed compensation means. An
// error the participant says retrying cannot fix is rm.Permanent: the TC
// parks the saga with the reason, for an operator. Anything else (the
// service is down, a timeout) is retried by the TC with backoff; the
// participant's fence makes the repeat harmless.
func compensationError(err error) error {
	switch status.Code(err) {
	case codes.OK:
		return nil
	case codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition:
		return rm.Permanent(err)
	}
	return err
}

// Report returns the balances and the ledger.
func (s *service) Report(ctx context.Context, _ *bankpb.ReportRequest) (*bankpb.ReportResponse, error) {
	accs, err := s.account.ListAccounts(ctx, &bankpb.ListAccountsRequest{})
	if err != nil {
		return nil, err
	}
	ents, err := s.ledger.ListEntries(ctx, &bankpb.ListEntriesRequest{})
	if err != nil {
		return nil, err
	}
	return &bankpb.ReportResponse{Accounts: accs.GetAccounts(), Entries: ents.GetEntries()}, nil
}
