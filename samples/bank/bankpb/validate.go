package bankpb

import (
	"errors"
	"fmt"

	"github.com/xact-io/xact/tm"
)

// MaxAmount is the largest amount one transfer moves.
const MaxAmount = 1_000_000_000

// maxAccountID is the length of the account.id column.
const maxAccountID = 32

// Validate reports whether t is a transfer a service can carry out.
func (t *Transfer) Validate() error {
	switch {
	case t == nil:
		return errors.New("missing transfer")
	case t.GetFrom() == "" || t.GetTo() == "":
		return errors.New("from and to are required")
	case len(t.GetFrom()) > maxAccountID || len(t.GetTo()) > maxAccountID:
		return fmt.Errorf("account ids are at most %d bytes", maxAccountID)
	case t.GetFrom() == t.GetTo():
		return errors.New("from and to must differ")
	case t.GetAmount() <= 0 || t.GetAmount() > MaxAmount:
		return fmt.Errorf("amount must be between 1 and %d", MaxAmount)
	}
	return nil
}

// Validate reports whether s names a branch and a valid transfer.
func (s *Step) Validate() error {
	if err := tm.ValidateXID(s.GetXid()); err != nil {
		return err
	}
	if s.GetBranchId() <= 0 {
		return errors.New("branch_id must be positive")
	}
	return s.GetTransfer().Validate()
}
