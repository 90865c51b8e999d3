package account

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xact-io/xact/datasource"
	"github.com/xact-io/xact/rm/fence"
	"github.com/xact-io/xact/samples/bank/bankpb"
	"github.com/xact-io/xact/samples/bank/internal/transport"
	"github.com/xact-io/xact/tm"
)

// stepResource names the saga step in the fence's records.
const stepResource = "account/move"

type service struct {
	bankpb.UnimplementedAccountServer
	db    *sql.DB      // the AT data source
	fence *fence.Fence // on the same data source (saga steps)
	log   *slog.Logger
}

// stepContext is the context of a saga step's or compensation's local
// transaction. A saga step commits for good and is undone by its
// compensation, not by an undo log, so its transaction must not become an
// AT branch of the saga's global transaction, whose XID its request
// carries: the XID is taken out. It must not overwrite a balance that an
// undecided AT transfer holds either (that transfer's rollback would find
// the row changed, and the TC would park it for an operator): as a
// global-lock transaction, its commit waits until no global transaction
// holds a row it wrote, within the data source's lock wait, else it rolls
// back and fails. The fence's SAVEPOINT works in it.
func stepContext(ctx context.Context) context.Context {
	return datasource.WithGlobalLockContext(tm.WithoutXID(ctx))
}

// Move moves money in one local transaction. When the caller is in a
// global transaction, ctx carries its XID (transport.NewServer put it
// there), and the local transaction is a branch of it.
func (s *service) Move(ctx context.Context, t *bankpb.Transfer) (*bankpb.Ack, error) {
	if err := t.Validate(); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	// The context given to BeginTx decides, once, what the transaction
	// is: with an XID, a branch of that global transaction.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, transport.Error(err)
	}
	defer tx.Rollback() // no-op after Commit
	if err := move(ctx, tx, t); err != nil {
		return nil, transport.Error(err)
	}
	// Commit registers the branch with the TC, taking global locks on both
	// account rows (waiting a little if another global transaction holds
	// one), inserts the undo log, and commits locally. If the global
	// transaction later rolls back, the TC has this process's RM replay the
	// undo log: the balances go back, with no code here.
	if err := tx.Commit(); err != nil {
		return nil, transport.Error(err)
	}
	xid, _ := tm.XID(ctx)
	s.log.InfoContext(ctx, "moved", "xid", xid, "from", t.GetFrom(), "to", t.GetTo(), "amount", t.GetAmount())
	return &bankpb.Ack{}, nil
}

// MoveStep is Move as a saga step: it commits for good, and
// CompensateMove undoes it. The fence records the step's branch in the
// same local transaction, so that a compensation knows whether the step's
// work committed, and a step that arrives after its compensation is
// refused. The transaction respects the global locks of AT transfers on
// the same balances (stepContext; README.md, "Mixing modes on the same
// rows").
func (s *service) MoveStep(ctx context.Context, st *bankpb.Step) (*bankpb.Ack, error) {
	b, err := stepBranch(ctx, st, true)
	if err != nil {
		return nil, err
	}
	t := st.GetTransfer()
	err = s.fence.Try(stepContext(ctx), b, func(ctx context.Context, tx *sql.Tx) error {
		return move(ctx, tx, t)
	}, nil)
	if err != nil {
		return nil, transport.Error(err)
	}
	s.log.InfoContext(ctx, "saga step: moved", "xid", b.XID, "branch_id", b.BranchID, "from", t.GetFrom(), "to", t.GetTo(), "amount", t.GetAmount())
	return &bankpb.Ack{}, nil
}

// CompensateMove undoes MoveStep. The TC pushes the compensation to the
// API service (the saga's orchestrator), which calls this in phase two,
// outside the global transaction; it may call it more than once, and for a
// step that never arrived. The fence makes all of that safe: the reverse
// move runs once, and only if the step's move committed.
func (s *service) CompensateMove(ctx context.Context, st *bankpb.Step) (*bankpb.Ack, error) {
	b, err := stepBranch(ctx, st, false)
	if err != nil {
		return nil, err
	}
	t := st.GetTransfer()
	// A global lock held on the rows makes it fail for now; the TC tries
	// the compensation again later.
	err = s.fence.Cancel(stepContext(ctx), b, func(ctx context.Context, tx *sql.Tx, try fence.TryOutcome) error {
		if try == fence.TryFailed {
			return nil // the step's transaction rolled back: nothing moved
		}
		// A saga has no isolation: the money may have been spent since.
		// A compensation must not fail for a business reason, so it takes
		// the money back even if that overdraws the account.
		if err := adjust(ctx, tx, []string{t.GetTo(), t.GetFrom()}, []int64{-t.GetAmount(), t.GetAmount()}); err != nil {
			return err
		}
		s.log.InfoContext(ctx, "saga compensation: moving back", "xid", b.XID, "branch_id", b.BranchID, "from", t.GetTo(), "to", t.GetFrom(), "amount", t.GetAmount())
		return nil
	})
	if err != nil {
		return nil, transport.Error(err)
	}
	return &bankpb.Ack{}, nil
}

// ListAccounts returns every balance. A plain read is not part of any
// global transaction: it sees what is committed locally, including the
// work of global transactions not yet decided (Seata's read-uncommitted).
func (s *service) ListAccounts(ctx context.Context, _ *bankpb.ListAccountsRequest) (*bankpb.ListAccountsResponse, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id, balance FROM account ORDER BY id")
	if err != nil {
		return nil, transport.Error(err)
	}
	defer rows.Close()
	resp := &bankpb.ListAccountsResponse{}
	for rows.Next() {
		a := &bankpb.AccountBalance{}
		if err := rows.Scan(&a.Id, &a.Balance); err != nil {
			return nil, transport.Error(err)
		}
		resp.Accounts = append(resp.Accounts, a)
	}
	if err := rows.Err(); err != nil {
		return nil, transport.Error(err)
	}
	return resp, nil
}

// move debits t.From and credits t.To through tx, refusing to overdraw.
func move(ctx context.Context, tx *sql.Tx, t *bankpb.Transfer) error {
	res, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance - ? WHERE id = ? AND balance >= ?",
		t.GetAmount(), t.GetFrom(), t.GetAmount())
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		var balance int64
		err := tx.QueryRowContext(ctx, "SELECT balance FROM account WHERE id = ?", t.GetFrom()).Scan(&balance)
		if errors.Is(err, sql.ErrNoRows) {
			return status.Errorf(codes.NotFound, "no account %q", t.GetFrom())
		} else if err != nil {
			return err
		}
		return status.Errorf(codes.FailedPrecondition, "insufficient funds: %s has %d, needs %d", t.GetFrom(), balance, t.GetAmount())
	}
	return adjust(ctx, tx, []string{t.GetTo()}, []int64{t.GetAmount()})
}

// adjust adds deltas[i] to the balance of ids[i] through tx.
func adjust(ctx context.Context, tx *sql.Tx, ids []string, deltas []int64) error {
	for i, id := range ids {
		res, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance + ? WHERE id = ?", deltas[i], id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return status.Errorf(codes.NotFound, "no account %q", id)
		}
	}
	return nil
}

// stepBranch validates a saga step's request and returns the fence key of
// its work: the step's branch. A forward step runs in the saga's global
// transaction, so the XID in its metadata must be the one it names; a
// compensation runs in phase two, where no XID travels.
func stepBranch(ctx context.Context, st *bankpb.Step, forward bool) (fence.Branch, error) {
	if err := st.Validate(); err != nil {
		return fence.Branch{}, status.Error(codes.InvalidArgument, err.Error())
	}
	if xid, _ := tm.XID(ctx); forward && xid != st.GetXid() {
		return fence.Branch{}, status.Errorf(codes.InvalidArgument, "step of %s called in global transaction %q", st.GetXid(), xid)
	}
	return fence.Branch{XID: st.GetXid(), BranchID: st.GetBranchId(), Resource: stepResource}, nil
}
