package tc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xact-io/xact/storage"
)

// recover resumes every unfinished transaction found in the store at start:
// decided ones get a phase-two round now; ones still in Begin wait for their
// TM or their deadline, as before the restart (I11).
//
// A global whose commit was decided without releasing its locks (by an
// xact that released them only after the first phase-two round, which a
// crash may have cut short) gets them released here: the decision is
// durable (I5).
func (s *Server) recover(ctx context.Context) error {
	gs, err := s.ledger.ListGlobals(ctx, storage.Filter{})
	if err != nil {
		return fmt.Errorf("tc: recovery: %w", err)
	}
	n := 0
	for _, g := range gs {
		if commitFamily(g.Status) && !g.LocksReleased {
			// (Another coordinator's global, on a shared store: its owner
			// does it.)
			if err := s.ledger.ReleaseLocks(ctx, g.XID); err != nil && !errors.Is(err, storage.ErrNotOwner) {
				return fmt.Errorf("tc: recovery: release locks of %s: %w", g.XID, err)
			}
		}
		if g.Status == stBegin || g.Parked {
			continue
		}
		s.drive.start(g.XID, nil)
		n++
	}
	if len(gs) > 0 {
		s.log.Info("recovery", "unfinished", len(gs), "resumed", n)
	}
	return nil
}

// scanLoop rolls back globals past their deadline and starts the rounds
// that are due, until the server closes.
func (s *Server) scanLoop() {
	t := time.NewTicker(s.cfg.ScanInterval)
	defer t.Stop()
	for {
		select {
		case <-s.bg.Done():
			return
		case <-t.C:
		}
		s.scanOnce(s.bg)
	}
}

func (s *Server) scanOnce(ctx context.Context) {
	const batch = 1024
	due, err := s.ledger.DueGlobals(ctx, time.Now(), batch)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("scan", "err", err)
		}
		return
	}
	for _, g := range due {
		if ctx.Err() != nil {
			return
		}
		switch {
		case g.Parked:
		case g.Status == stBegin:
			s.expire(ctx, g.XID)
		case !s.drive.isRunning(g.XID):
			s.drive.start(g.XID, nil)
		}
	}
}

// expire moves a global past its deadline from Begin to
// TimeoutRollbacking and starts its rollback. Branches registering from now
// on are refused (I4).
func (s *Server) expire(ctx context.Context, xid string) {
	mu := s.stripe(xid)
	mu.Lock()
	now := time.Now()
	g, err := s.ledger.UpdateGlobal(ctx, xid, func(g *storage.Global) error {
		if g.Status != stBegin || now.Before(g.Deadline) {
			return errStale
		}
		g.Status, g.UpdatedAt = stTimeoutRollbacking, now
		g.NextAt = now.Add(s.cfg.PhaseTwoTimeout + s.cfg.ScanInterval)
		g.History = appendEvent(g.History, now, fmt.Sprintf("timed out after %v", g.Timeout))
		return nil
	}, storage.Durable)
	mu.Unlock()
	if err != nil {
		if err != errStale && ctx.Err() == nil {
			s.log.Warn("timeout", "xid", xid, "err", err)
		}
		return
	}
	s.metrics.decided(g, stTimeoutRollbacking, now)
	s.log.Info("global timed out", "xid", xid)
	s.drive.start(xid, nil)
}
