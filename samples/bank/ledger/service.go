package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/rm/fence"
	"github.com/xact-io/xact/rm/tcc"
	"github.com/xact-io/xact/samples/bank/bankpb"
	"github.com/xact-io/xact/samples/bank/internal/transport"
	"github.com/xact-io/xact/tm"
)

const (
	// postResource is the TCC resource whose Try is Reserve. The TC routes
	// its Confirm and Cancel to any RM that registered this name.
	postResource = "ledger-post"
	// stepResource names the saga step in the fence's records.
	stepResource = "ledger/post"
)

// reservation is the TCC resource's request. The TC keeps it as JSON with
// the branch and hands it back to Confirm and Cancel, possibly in another
// process after a restart.
type reservation struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Amount int64  `json:"amount"`
}

type service struct {
	bankpb.UnimplementedLedgerServer
	db    *sql.DB // the AT data source
	plain *sql.DB // the same database, unwrapped (TCC and saga work)
	fence *fence.Fence
	post  *tcc.Resource[reservation]
	log   *slog.Logger
}

const insertEntry = "INSERT INTO entry (xid, branch_id, mode, from_account, to_account, amount, state) VALUES (?, ?, ?, ?, ?, ?, ?)"

// Post records a posted entry. ctx carries the caller's XID, so the
// statement, run outside a transaction, is a local transaction and an AT
// branch of its own: if the global transaction rolls back, the TC has this
// service's RM delete the row again from its undo log.
func (s *service) Post(ctx context.Context, t *bankpb.Transfer) (*bankpb.Ack, error) {
	if err := t.Validate(); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	xid, ok := tm.XID(ctx)
	if !ok {
		return nil, status.Error(codes.FailedPrecondition, "Post must be called in a global transaction")
	}
	// The AT branch's id is not known before its commit registers it; the
	// entry's branch_id stays 0 (one AT entry per global transaction).
	if _, err := s.db.ExecContext(ctx, insertEntry, xid, 0, "at", t.GetFrom(), t.GetTo(), t.GetAmount(), "posted"); err != nil {
		return nil, transport.Error(err)
	}
	s.log.InfoContext(ctx, "AT: entry posted", "xid", xid, "from", t.GetFrom(), "to", t.GetTo(), "amount", t.GetAmount())
	return &bankpb.Ack{}, nil
}

// Reserve runs the Try of the TCC resource in the caller's global
// transaction: Try registers a TCC branch with the TC (the reservation is
// its action context), then runs tryPost under the fence.
func (s *service) Reserve(ctx context.Context, t *bankpb.Transfer) (*bankpb.Ack, error) {
	if err := t.Validate(); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	err := s.post.Try(ctx, reservation{From: t.GetFrom(), To: t.GetTo(), Amount: t.GetAmount()})
	if errors.Is(err, tm.ErrNoTransaction) {
		return nil, status.Error(codes.FailedPrecondition, "Reserve must be called in a global transaction")
	}
	if err != nil {
		// Try reported the failure to the TC: the global transaction
		// cannot commit any more, and Cancel will be told TryFailed.
		return nil, transport.Error(err)
	}
	return &bankpb.Ack{}, nil
}

// tryPost is the TCC Try: a pending entry, in the fence's transaction.
func (s *service) tryPost(ctx context.Context, tx *sql.Tx, r reservation) error {
	b, _ := tcc.BranchFrom(ctx)
	if _, err := tx.ExecContext(ctx, insertEntry, b.XID, b.BranchID, "tcc", r.From, r.To, r.Amount, "pending"); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "TCC try: entry pending", "xid", b.XID, "branch_id", b.BranchID, "amount", r.Amount)
	return nil
}

// confirmPost is the TCC Confirm, pushed by the TC after the commit
// decision. The fence runs it once per branch, and only after a Try that
// committed.
func (s *service) confirmPost(ctx context.Context, tx *sql.Tx, r reservation) error {
	b, _ := tcc.BranchFrom(ctx)
	if err := setState(ctx, tx, b, "pending", "posted"); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "TCC confirm: entry posted", "xid", b.XID, "branch_id", b.BranchID, "amount", r.Amount)
	return nil
}

// cancelPost is the TCC Cancel, pushed by the TC after the rollback
// decision. The fence skips it when no Try arrived and runs it once.
func (s *service) cancelPost(ctx context.Context, tx *sql.Tx, r reservation, try tcc.TryOutcome) error {
	b, _ := tcc.BranchFrom(ctx)
	if try == tcc.TryFailed {
		return nil // the Try's transaction rolled back: no entry to void
	}
	if err := setState(ctx, tx, b, "pending", "voided"); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "TCC cancel: entry voided", "xid", b.XID, "branch_id", b.BranchID, "amount", r.Amount)
	return nil
}

// PostStep is Post as a saga step: it commits a posted entry for good, and
// CompensatePost voids it. The fence records the step's branch in the same
// local transaction.
func (s *service) PostStep(ctx context.Context, st *bankpb.Step) (*bankpb.Ack, error) {
	b, err := stepBranch(ctx, st, true)
	if err != nil {
		return nil, err
	}
	t := st.GetTransfer()
	err = s.fence.Try(ctx, b, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, insertEntry, b.XID, b.BranchID, "saga", t.GetFrom(), t.GetTo(), t.GetAmount(), "posted")
		return err
	}, nil)
	if err != nil {
		return nil, transport.Error(err)
	}
	s.log.InfoContext(ctx, "saga step: entry posted", "xid", b.XID, "branch_id", b.BranchID, "amount", t.GetAmount())
	return &bankpb.Ack{}, nil
}

// CompensatePost voids what PostStep posted. It is called in phase two,
// possibly more than once, and possibly for a step that never arrived; the
// fence makes it run once, and only after a step that committed.
func (s *service) CompensatePost(ctx context.Context, st *bankpb.Step) (*bankpb.Ack, error) {
	b, err := stepBranch(ctx, st, false)
	if err != nil {
		return nil, err
	}
	err = s.fence.Cancel(ctx, b, func(ctx context.Context, tx *sql.Tx, try fence.TryOutcome) error {
		if try == fence.TryFailed {
			return nil // the step's transaction rolled back: no entry
		}
		if err := setState(ctx, tx, b, "posted", "voided"); err != nil {
			return err
		}
		s.log.InfoContext(ctx, "saga compensation: voiding entry", "xid", b.XID, "branch_id", b.BranchID)
		return nil
	})
	if err != nil {
		return nil, transport.Error(err)
	}
	return &bankpb.Ack{}, nil
}

// ListEntries returns every entry.
func (s *service) ListEntries(ctx context.Context, _ *bankpb.ListEntriesRequest) (*bankpb.ListEntriesResponse, error) {
	rows, err := s.plain.QueryContext(ctx, "SELECT id, xid, mode, from_account, to_account, amount, state FROM entry ORDER BY id")
	if err != nil {
		return nil, transport.Error(err)
	}
	defer rows.Close()
	resp := &bankpb.ListEntriesResponse{}
	for rows.Next() {
		e := &bankpb.Entry{}
		if err := rows.Scan(&e.Id, &e.Xid, &e.Mode, &e.From, &e.To, &e.Amount, &e.State); err != nil {
			return nil, transport.Error(err)
		}
		resp.Entries = append(resp.Entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, transport.Error(err)
	}
	return resp, nil
}

// setState moves the entry of branch b from state from to state to. The
// fence guarantees the entry exists in state from; if it does not, the
// data was changed behind the service's back, and retrying cannot help:
// rm.Permanent makes the TC park the transaction for an operator.
func setState(ctx context.Context, tx *sql.Tx, b fence.Branch, from, to string) error {
	res, err := tx.ExecContext(ctx, "UPDATE entry SET state = ? WHERE xid = ? AND branch_id = ? AND state = ?", to, b.XID, b.BranchID, from)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return rm.Permanent(fmt.Errorf("ledger: no %s entry of branch %v", from, b))
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
