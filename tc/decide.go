package tc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xact-io/xact/internal/failpoint"
	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
)

// errStale aborts an UpdateGlobal whose precondition no longer holds.
var errStale = errors.New("tc: global changed concurrently")

// verdict is the direction of a decision.
type verdict uint8

const (
	toCommit verdict = iota + 1
	toRollback
)

// requester is who asks for a decision.
type requester uint8

const (
	// byTM: the transaction manager. Commit is refused after the Begin
	// deadline; a parked global stays parked.
	byTM requester = iota + 1
	// byOperator: the admin API. It ignores the Begin deadline and
	// resumes a parked global in the direction already decided.
	byOperator
)

// decide makes (or joins) the commit or rollback decision for xid and waits
// up to DecisionWait for phase two. It returns the global's status after the
// wait: a final status, or an in-progress one whose decision is durable.
//
// Invariants kept here: commit is decided only from Begin and only if no
// branch reported a phase-one failure (I3); a durable decision is never
// changed (I2): asking the opposite of what was decided is an error, asking
// the same again is answered with the current status. byOperator is the
// operator's path: it ignores the Begin deadline and resumes a parked
// transaction in the direction already decided.
//
// begin, when not nil, begins a lazily begun global the TC never saw (it
// has no branch, so the decision is final at once, and its tombstone
// refuses a registration that arrives late).
//
// reports (checked with checkReports) are phase-one reports of xid's
// branches that the request carries: recorded before the decision while
// the global is in Begin (recordCarried), ignored afterwards.
func (s *Server) decide(ctx context.Context, xid string, begin *xactpb.BeginRequest, reports []*xactpb.ReportBranchRequest, v verdict, who requester) (storage.Status, error) {
	commit := v == toCommit
	if begin != nil {
		if _, err := s.ledger.GetGlobal(ctx, xid); errors.Is(err, storage.ErrNotFound) {
			if len(reports) > 0 {
				// A global no one has begun has no branch to report on.
				return 0, fmt.Errorf("%w: %s has no branch %d", protocol.ErrBranchNotFound, xid, reports[0].GetBranchId())
			}
			if err := s.beginLazy(ctx, xid, begin); err != nil {
				return 0, err
			}
		}
	}
	st, pre, err := s.decideLocked(ctx, xid, reports, v, who)
	if err != nil {
		return st, err
	}
	if storage.Final(st) {
		return st, nil
	}
	r := s.drive.start(xid, pre)
	if commit && !s.cfg.WaitATCommit && pre != nil && onlyAT(pre.branches) {
		// An AT branch's phase-two commit only deletes its undo log: the
		// outcome is final once the decision is durable, and the locks went
		// with it (I5). The caller does not wait for the clean-up; phase two
		// runs, is retried and is recorded as for any other commit.
		return st, nil
	}
	wait := s.cfg.DecisionWait
	if dl, ok := ctx.Deadline(); ok {
		// Answer before the caller gives up: the decision is durable, and an
		// in-progress status beats a DeadlineExceeded that hides it.
		wait = min(wait, time.Until(dl)-time.Until(dl)/10-5*time.Millisecond)
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-r.done:
			if r.status != 0 {
				return r.status, nil
			}
		case <-t.C:
		case <-ctx.Done():
		}
	}
	g, err := s.ledger.GetGlobal(context.WithoutCancel(ctx), xid)
	if err != nil {
		// The decision is durable; only its current status is unknown.
		return st, nil
	}
	return g.Status, nil
}

// When it makes the decision it also returns what the first phase-two round
// needs, if it has all of it.
func (s *Server) decideLocked(ctx context.Context, xid string, reports []*xactpb.ReportBranchRequest, v verdict, who requester) (storage.Status, *preload, error) {
	commit, force := v == toCommit, who == byOperator
	mu := s.stripe(xid)
	mu.Lock()
	defer mu.Unlock()
	g, err := s.ledger.GetGlobal(ctx, xid)
	if err != nil {
		return 0, nil, err
	}
	// Carried reports go in before the branches are read for the decision
	// (a PHASE_ONE_FAILED among them makes a commit a rollback, I3), and
	// are made durable by it.
	if err := s.recordCarried(ctx, g, reports); err != nil {
		return 0, nil, err
	}
	if g.Finished {
		st, err := answerDecided(g, commit)
		return st, nil, err
	}
	now := time.Now()
	if g.Status != stBegin {
		if commit && !commitFamily(g.Status) || !commit && !rollbackFamily(g.Status) {
			st, err := answerDecided(g, commit)
			return st, nil, err
		}
		if force && g.Parked {
			resumed := stCommitRetrying
			if !commit {
				resumed = stRollbackRetrying
				if timeoutFamily(g.Status) {
					resumed = stTimeoutRollbackRetry
				}
			}
			g, err = s.ledger.UpdateGlobal(ctx, xid, func(g *storage.Global) error {
				g.Parked, g.Attempts, g.Status, g.NextAt, g.UpdatedAt = false, 0, resumed, now, now
				g.History = appendEvent(g.History, now, "resumed by operator")
				return nil
			}, storage.Durable)
			if err != nil {
				return 0, nil, err
			}
			s.metrics.parkedChanged()
			s.log.Info("global resumed by operator", "xid", xid, "status", g.Status)
		}
		return g.Status, nil, nil
	}

	// Begin: this call makes the decision.
	for {
		st, pre, again, err := s.decideBegin(ctx, g, v, who, now)
		if !again {
			return st, pre, err
		}
	}
}

// errRegistered aborts closing a global without branches: one registered
// after they were read.
var errRegistered = errors.New("tc: a branch registered concurrently")

// decideBegin decides the Begin global g; again reports that a branch
// registered while it decided, and the decision must be made anew.
func (s *Server) decideBegin(ctx context.Context, g *storage.Global, v verdict, who requester, now time.Time) (st storage.Status, pre *preload, again bool, err error) {
	commit, force := v == toCommit, who == byOperator
	xid := g.XID
	branches, err := s.ledger.Branches(ctx, xid)
	if err != nil {
		return 0, nil, false, err
	}
	target, reason := stRollbacking, "rolled back by request"
	var refuse error
	if commit {
		target, reason = stCommitting, "commit decided"
		if !force && !now.Before(g.Deadline) {
			target, reason = stTimeoutRollbacking, "timed out before commit"
			refuse = fmt.Errorf("%w: %s passed its %v timeout", protocol.ErrTimedOut, xid, g.Timeout)
		}
		for _, b := range branches {
			if b.Status == brPhaseOneFailed || b.Status == brPhaseOneTimeout {
				if force {
					return g.Status, nil, false, fmt.Errorf("%w: branch %d reported a phase-one failure; only rollback is possible", protocol.ErrInvalidArgument, b.ID)
				}
				target, reason = stRollbacking, fmt.Sprintf("branch %d reported a phase-one failure", b.ID)
				refuse = fmt.Errorf("%w: %s", protocol.ErrRolledBack, reason)
				break
			}
		}
	}
	if len(branches) == 0 {
		// Close registration before finishing: FinishGlobal removes every
		// branch, and one that registered after the read above would be
		// removed unseen, its local change never compensated (I1). The
		// write conflicts with any registration in between; the loser
		// sees the winner's state (a branch to decide with, or a global no
		// longer in Begin that refuses the branch).
		_, err := s.ledger.UpdateGlobal(ctx, xid, func(g *storage.Global) error {
			if g.Status != stBegin {
				return errStale
			}
			if g.BranchSeq != 0 {
				return errRegistered
			}
			g.Status, g.UpdatedAt = target, now
			g.History = appendEvent(g.History, now, reason)
			return nil
		}, storage.Durable)
		if errors.Is(err, errRegistered) {
			return 0, nil, true, nil
		}
		if err != nil {
			return 0, nil, false, err
		}
		final := map[storage.Status]storage.Status{
			stCommitting: stCommitted, stRollbacking: stRollbacked, stTimeoutRollbacking: stTimeoutRollbacked,
		}[target]
		s.metrics.decided(g, target, now)
		if err := s.ledger.FinishGlobal(ctx, xid, final, storage.Durable); err != nil {
			return 0, nil, false, err
		}
		s.metrics.finishedGlobal(nil, nil, final, now)
		return final, nil, false, refuse
	}
	g, err = s.ledger.UpdateGlobal(ctx, xid, func(g *storage.Global) error {
		if g.Status != stBegin {
			return errStale
		}
		g.Status, g.Attempts, g.UpdatedAt = target, 0, now
		// I5: once the commit decision is durable the rows are free; the
		// release is part of the write that makes it durable, so no
		// restart brings the locks back, and the ledger frees them when
		// this write returns — before phase two. A rollback keeps them
		// until each branch's undo is done.
		g.LocksReleased = target == stCommitting
		// A lease: the scanner leaves the global to this decision's driver
		// until then, and picks it up after a crash.
		g.NextAt = now.Add(s.cfg.PhaseTwoTimeout + s.cfg.ScanInterval)
		g.History = appendEvent(g.History, now, reason)
		return nil
	}, storage.Durable)
	if err != nil {
		return 0, nil, false, err
	}
	s.metrics.decided(g, target, now)
	s.log.Debug("global decided", "xid", xid, "status", target)
	failpoint.Hit("tc/decide/after-decision")
	// The decision closed registration, so the branches read before it are
	// all of them if their count matches the sequence the store handed out;
	// otherwise one registered in between and the round reads them again.
	if int64(len(branches)) == g.BranchSeq {
		pre = &preload{g: g, branches: branches}
	}
	if refuse != nil {
		// Start the rollback now; the caller learns why its commit failed.
		s.drive.start(xid, pre)
		return g.Status, nil, false, refuse
	}
	return g.Status, pre, false, nil
}

// answerDecided answers a decision request for a global that is already
// decided: the same direction gets the status, the opposite an error.
func answerDecided(g *storage.Global, commit bool) (storage.Status, error) {
	switch {
	case commit && commitFamily(g.Status), !commit && rollbackFamily(g.Status):
		return g.Status, nil
	case commit && timeoutFamily(g.Status):
		return g.Status, fmt.Errorf("%w: %s (%v)", protocol.ErrTimedOut, g.XID, g.Status)
	case commit:
		return g.Status, fmt.Errorf("%w: %s (%v)", protocol.ErrRolledBack, g.XID, g.Status)
	default:
		return g.Status, fmt.Errorf("%w: %s (%v)", protocol.ErrCommitted, g.XID, g.Status)
	}
}

const maxHistory = 20

func appendEvent(h []storage.Event, at time.Time, what string) []storage.Event {
	h = append(h, storage.Event{At: at, What: what})
	if len(h) > maxHistory {
		h = append(h[:0:0], h[len(h)-maxHistory:]...)
	}
	return h
}

// onlyAT reports whether every branch is an AT branch (and there is one).
func onlyAT(branches []*storage.Branch) bool {
	for _, b := range branches {
		if b.Type != xactpb.BranchType_BRANCH_TYPE_AT {
			return false
		}
	}
	return len(branches) > 0
}
