package tc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xact-io/xact/internal/backoff"
	"github.com/xact-io/xact/internal/failpoint"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/tc/internal/hub"
)

// driver runs phase two. At most one run per global is in flight at a time;
// a request that finds one running joins it. A run is one round: it pushes
// the pending actions, records the outcomes, and either finishes the global,
// schedules the next round (NextAt, picked up by the scanner), or parks it.
type driver struct {
	s    *Server
	wg   sync.WaitGroup
	work chan func() // to an idle worker (spawn)
	idle atomic.Int32
	mu   struct {
		sync.Mutex
		running map[string]*run
	}
}

// run is one round in flight. status is valid once done is closed: the
// global's status after the round, or 0 if the round could not tell.
type run struct {
	done   chan struct{}
	status storage.Status
	again  bool // guarded by driver.mu: kick asked for another round after this one
}

// preload is what the caller that starts a round already read: the global
// after its decision and all of its branches. It saves the round its reads.
type preload struct {
	g        *storage.Global
	branches []*storage.Branch
}

func newDriver(s *Server) *driver {
	d := &driver{s: s, work: make(chan func())}
	d.mu.running = map[string]*run{}
	return d
}

// idleWorkers bounds the goroutines that wait for the next round.
const idleWorkers = 256

// spawn runs f on an idle worker, or on a new goroutine that becomes one.
// A round on a fresh goroutine grows its stack again through the store's
// calls; reused workers keep theirs (a fresh goroutine per round cost 5%
// of the server's CPU in runtime.newstack under `xact bench`).
func (d *driver) spawn(f func()) {
	select {
	case d.work <- f:
	default:
		go d.worker(f)
	}
}

// worker runs f, then waits for more until the server stops, unless
// enough workers wait already.
func (d *driver) worker(f func()) {
	for {
		f()
		if d.idle.Add(1) > idleWorkers {
			d.idle.Add(-1)
			return
		}
		select {
		case f = <-d.work:
			d.idle.Add(-1)
		case <-d.s.bg.Done():
			d.idle.Add(-1)
			return
		}
	}
}

// start begins a round for xid unless one is running, and returns the
// round (new or joined). pre may be nil.
func (d *driver) start(xid string, pre *preload) *run {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.mu.running[xid]; ok {
		return r
	}
	r := &run{done: make(chan struct{})}
	if d.s.bg.Err() != nil {
		close(r.done)
		return r
	}
	d.mu.running[xid] = r
	d.wg.Add(1)
	d.spawn(func() {
		defer d.wg.Done()
		defer func() {
			d.mu.Lock()
			delete(d.mu.running, xid)
			again := r.again
			d.mu.Unlock()
			close(r.done)
			if again {
				d.start(xid, nil)
			}
		}()
		ctx, cancel, ok := d.s.driveCtx(xid, pre != nil)
		if !ok {
			return // another coordinator drives it (a cluster), or may
		}
		defer cancel()
		r.status = d.round(ctx, xid, pre)
	})
	return r
}

// kick starts a round for xid now, or, if one is running, another one as
// soon as it ends: the running round may have found no RM for a branch
// whose RM has attached since (see waker). A round of a global that is
// finished or parked by then returns without doing anything.
func (d *driver) kick(xid string) {
	d.mu.Lock()
	if r, ok := d.mu.running[xid]; ok {
		r.again = true
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	d.start(xid, nil)
}

func (d *driver) isRunning(xid string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.mu.running[xid]
	return ok
}

func (d *driver) wait() { d.wg.Wait() }

// Every write of a round is relaxed (storage.Relaxed): the decision it
// carries out is already durable, every action is idempotent at the RM, and
// a round lost in a crash is redone by recovery.
func (d *driver) round(ctx context.Context, xid string, pre *preload) storage.Status {
	var g *storage.Global
	var branches []*storage.Branch
	if pre != nil {
		g, branches = pre.g, pre.branches
	} else {
		var err error
		if g, err = d.s.ledger.GetGlobal(ctx, xid); err != nil {
			if errors.Is(err, storage.ErrCorrupt) {
				// Nothing to park it in: the store stops offering it, and
				// listing and showing it fail, naming the damage.
				d.s.log.Error("phase two: the global's record is damaged; it is not driven", "xid", xid, "err", err)
			} else if ctx.Err() == nil {
				d.s.log.Warn("phase two: read global", "xid", xid, "err", err)
			}
			return 0
		}
		if g.Finished || g.Parked {
			return g.Status
		}
		if branches, err = d.s.ledger.Branches(ctx, xid); err != nil {
			if errors.Is(err, storage.ErrCorrupt) {
				return d.parkDamaged(ctx, xid, err)
			}
			if ctx.Err() == nil {
				d.s.log.Warn("phase two: read branches", "xid", xid, "err", err)
			}
			return 0
		}
	}
	switch {
	case commitFamily(g.Status):
		return d.commit(ctx, g, branches)
	case rollbackFamily(g.Status):
		return d.rollback(ctx, g, branches)
	}
	return g.Status
}

func (d *driver) action(ctx context.Context, kind xactpb.ActionKind, b *storage.Branch) hub.Result {
	ctx, cancel := context.WithTimeout(ctx, d.s.cfg.PhaseTwoTimeout)
	defer cancel()
	// A closure: `defer failpoint.Hit(…)` would keep Hit in default builds
	// (the wrapper the compiler makes for it names it for tracebacks).
	defer func() { failpoint.Hit("tc/phase2/after-send") }()
	if ctx.Err() != nil {
		// The round's context ended (shutting down, or in a cluster the
		// lease may run out): send nothing more.
		return hub.Result{Outcome: xactpb.Outcome_OUTCOME_UNKNOWN, Reason: "not sent: " + ctx.Err().Error()}
	}
	if d.s.log.Enabled(ctx, slog.LevelDebug) {
		// Which coordinator (and epoch) drives the global: the cluster
		// fault tests check from these lines that no global was driven
		// by two at once.
		var epoch int64
		if d.s.member != nil {
			epoch = d.s.member.epoch
		}
		d.s.log.Debug("phase two action", "xid", b.XID, "branch_id", b.ID, "kind", kind.String(), "node_id", d.s.cfg.NodeID, "epoch", epoch)
	}
	traceContext, traced := d.s.traces.phaseTwo(ctx, kind, b) // trace.go
	r := d.s.hub.Do(ctx, &xactpb.BranchAction{
		Kind:            kind,
		Xid:             b.XID,
		BranchId:        b.ID,
		ResourceId:      b.Resource,
		BranchType:      b.Type,
		ApplicationData: b.AppData,
		LockKeys:        b.LockKeys,
		TraceContext:    traceContext,
	})
	traced(r)
	return r
}

// commit pushes BranchCommit to every branch not yet committed, in
// parallel: commit order does not matter. The global's locks were released
// with the decision (decideBegin).
func (d *driver) commit(ctx context.Context, g *storage.Global, branches []*storage.Branch) storage.Status {
	var todo []*storage.Branch
	for _, b := range branches {
		if b.Status != brCommitted {
			todo = append(todo, b)
		}
	}
	results := make([]hub.Result, len(todo))
	var wg sync.WaitGroup
	for i, b := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = d.action(ctx, xactpb.ActionKind_ACTION_KIND_COMMIT, b)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return 0 // shutting down: the store still says what is left to do
	}
	var failed, unknown []string
	for i, r := range results {
		switch r.Outcome {
		case xactpb.Outcome_OUTCOME_FAILED:
			failed = append(failed, fmt.Sprintf("branch %d: %s", todo[i].ID, r.Reason))
		case xactpb.Outcome_OUTCOME_UNKNOWN:
			unknown = append(unknown, fmt.Sprintf("branch %d: %s", todo[i].ID, r.Reason))
		}
	}
	if len(failed) == 0 && len(unknown) == 0 {
		failpoint.Hit("tc/phase2/before-finish")
		if err := d.s.ledger.FinishGlobal(ctx, g.XID, stCommitted, storage.Relaxed); err != nil {
			if errors.Is(err, storage.ErrCorrupt) {
				return d.parkDamaged(ctx, g.XID, err)
			}
			d.s.log.Warn("phase two: finish", "xid", g.XID, "err", err)
			return 0
		}
		d.s.metrics.finishedGlobal(g, branches, stCommitted, time.Now())
		return stCommitted
	}
	// Not done in one round: record per-branch progress so that the next
	// round skips what is committed.
	for i, b := range todo {
		r := results[i]
		_, err := d.s.ledger.UpdateBranch(ctx, g.XID, b.ID, func(b *storage.Branch) error {
			switch r.Outcome {
			case xactpb.Outcome_OUTCOME_DONE:
				b.Status, b.Reason = brCommitted, ""
			case xactpb.Outcome_OUTCOME_FAILED:
				b.Status, b.Reason = brCommitFailedFinal, r.Reason
				b.Attempts++
			default:
				b.Status, b.Reason = brCommitFailedRetryable, r.Reason
				b.Attempts++
			}
			return nil
		}, storage.Relaxed)
		if err != nil {
			d.s.log.Warn("phase two: record branch", "xid", g.XID, "branch_id", b.ID, "err", err)
		}
	}
	return d.reschedule(ctx, g.XID, toCommit, failed, unknown)
}

// rollback undoes branches one at a time in reverse registration order
// (I9). An UNKNOWN answer ends the round: the branch may still succeed,
// and the earlier ones may depend on it. A FAILED answer (unretryable: a
// dirty row, a compensation the database refuses, a Cancel that gave up)
// keeps the branch's locks and parks the global at the end of the round,
// but the round goes on with the earlier AT branches that share no row
// with a failed or held-back one (independent): their compensation cannot
// depend on the failed one, so every branch that can be rolled back is.
// The rest are held back, unsent, until an operator resumes the global,
// which sends every branch not yet rolled back again, in order. An
// UNKNOWN answer after a FAILED one parks at once.
//
// An AT branch that reported PHASE_ONE_FAILED with nothing committed
// (nothingCommitted) has nothing to undo: it is recorded as rolled back
// without an action, so a broken participant database does not hold up
// the others.
func (d *driver) rollback(ctx context.Context, g *storage.Global, branches []*storage.Branch) storage.Status {
	slices.SortFunc(branches, func(a, b *storage.Branch) int { return int(b.ID - a.ID) })
	var failed []string
	// blocked holds the rows of the branches that failed or were held
	// back in this round: an earlier branch that lists one of them must
	// wait, since the later change to the row is not undone.
	var blocked map[string]bool
	for i, b := range branches {
		if b.Status == brRollbacked {
			continue
		}
		if len(failed) > 0 && !independent(b, blocked) {
			for _, k := range b.LockKeys {
				blocked[b.Resource+"\x00"+k] = true
			}
			continue
		}
		r := hub.Result{Outcome: xactpb.Outcome_OUTCOME_DONE}
		if !nothingCommitted(b) {
			r = d.action(ctx, xactpb.ActionKind_ACTION_KIND_ROLLBACK, b)
			if ctx.Err() != nil {
				return 0
			}
		}
		if r.Outcome == xactpb.Outcome_OUTCOME_DONE {
			if i == len(branches)-1 && len(failed) == 0 {
				break // the last one: FinishGlobal below records it with the rest
			}
			// The branch's undo is durable at the RM: record it and free
			// its rows in one write (I5).
			_, err := d.s.ledger.UpdateBranch(ctx, g.XID, b.ID, func(b *storage.Branch) error {
				b.Status, b.Reason, b.LocksReleased = brRollbacked, "", true
				return nil
			}, storage.Relaxed)
			if errors.Is(err, storage.ErrCorrupt) {
				return d.parkDamaged(ctx, g.XID, err)
			}
			if err != nil {
				d.s.log.Warn("phase two: record rollback", "xid", g.XID, "branch_id", b.ID, "err", err)
				return 0 // the next round re-sends it; rollback is idempotent
			}
			failpoint.Hit("tc/phase2/after-branch-undo")
			continue
		}
		what := fmt.Sprintf("branch %d: %s", b.ID, r.Reason)
		dropped := false
		_, err := d.s.ledger.UpdateBranch(ctx, g.XID, b.ID, func(b *storage.Branch) error {
			if nothingCommitted(b) {
				// Its RM reported, meanwhile, that it committed nothing
				// (coordinator.dropLate): nothing to undo after all.
				dropped = true
				b.Status, b.Reason = brRollbacked, ""
				return nil
			}
			b.Status, b.Reason = brRollbackFailedRetryble, r.Reason
			if r.Outcome == xactpb.Outcome_OUTCOME_FAILED {
				b.Status = brRollbackFailedFinal
			}
			b.Attempts++
			return nil
		}, storage.Relaxed)
		if err != nil {
			d.s.log.Warn("phase two: record branch", "xid", g.XID, "branch_id", b.ID, "err", err)
		}
		if dropped {
			continue
		}
		if r.Outcome == xactpb.Outcome_OUTCOME_FAILED {
			failed = append(failed, what)
			if blocked == nil {
				blocked = map[string]bool{}
			}
			for _, k := range b.LockKeys {
				blocked[b.Resource+"\x00"+k] = true
			}
			continue
		}
		// UNKNOWN: retry later, unless something already failed for good:
		// then the global parks (FAILED is never retried by itself) and
		// an operator's resume sends both again.
		return d.reschedule(ctx, g.XID, toRollback, failed, []string{what})
	}
	if len(failed) > 0 {
		return d.reschedule(ctx, g.XID, toRollback, failed, nil)
	}
	failpoint.Hit("tc/phase2/before-finish")
	final := stRollbacked
	if timeoutFamily(g.Status) {
		final = stTimeoutRollbacked
	}
	if err := d.s.ledger.FinishGlobal(ctx, g.XID, final, storage.Relaxed); err != nil {
		if errors.Is(err, storage.ErrCorrupt) {
			return d.parkDamaged(ctx, g.XID, err)
		}
		d.s.log.Warn("phase two: finish", "xid", g.XID, "err", err)
		return 0
	}
	d.s.metrics.finishedGlobal(g, branches, final, time.Now())
	return final
}

// independent reports whether b can be rolled back before the branches
// whose rows are in blocked: an AT branch none of whose rows is blocked.
// An AT branch that shares a row with a later one must wait for it: if
// the later branch put the row back as the earlier one found it, the
// earlier one's dirty check would take the row for already undone, and
// the later one's undo, run after an operator's fix, would leave it in
// the wrong state. TCC and saga branches say nothing about their rows, so
// they wait too.
func independent(b *storage.Branch, blocked map[string]bool) bool {
	if b.Type != xactpb.BranchType_BRANCH_TYPE_AT {
		return false
	}
	for _, k := range b.LockKeys {
		if blocked[b.Resource+"\x00"+k] {
			return false
		}
	}
	return true
}

// nothingCommitted reports a branch whose phase one left nothing to undo:
// an AT branch reported PHASE_ONE_FAILED with nothing_committed, recorded
// as that status with its locks released (ReportBranch). An AT branch
// that reported PHASE_ONE_FAILED without it (its local commit may have
// happened, or an RM older than the flag) keeps its locks and is rolled
// back as usual.
func nothingCommitted(b *storage.Branch) bool {
	return b.Type == xactpb.BranchType_BRANCH_TYPE_AT && b.Status == brPhaseOneFailed && b.LocksReleased
}

// reschedule records a round that did not finish: a FAILED answer parks the
// global at once; UNKNOWN answers schedule another round after a capped,
// jittered exponential backoff, until the retry budget is spent and the
// global is parked.
func (d *driver) reschedule(ctx context.Context, xid string, v verdict, failed, unknown []string) storage.Status {
	commit := v == toCommit
	mu := d.s.stripe(xid)
	mu.Lock()
	defer mu.Unlock()
	now := time.Now()
	g, err := d.s.ledger.UpdateGlobal(ctx, xid, func(g *storage.Global) error {
		if g.Parked || !(commit && commitFamily(g.Status) || !commit && rollbackFamily(g.Status)) {
			return errStale
		}
		g.Attempts++
		g.UpdatedAt = now
		timeout := timeoutFamily(g.Status)
		switch {
		case len(failed) > 0:
			g.Parked, g.NextAt = true, time.Time{}
			g.Reason = "phase two failed: " + failed[0]
			g.Status = stCommitFailed
			if !commit {
				g.Status = pick(timeout, stTimeoutRollbackFailed, stRollbackFailed)
			}
		case g.Attempts >= d.s.cfg.RetryBudget:
			g.Parked, g.NextAt = true, time.Time{}
			g.Reason = fmt.Sprintf("retry budget of %d attempts spent; last: %s", d.s.cfg.RetryBudget, unknown[0])
			g.Status = pick(commit, stCommitRetryTimeout, stRollbackRetryTimeout)
		default:
			g.Reason = unknown[0]
			g.NextAt = now.Add(d.backoff(g.Attempts))
			g.Status = stCommitRetrying
			if !commit {
				g.Status = pick(timeout, stTimeoutRollbackRetry, stRollbackRetrying)
			}
		}
		g.History = appendEvent(g.History, now, fmt.Sprintf("attempt %d: %s", g.Attempts, g.Reason))
		return nil
	}, storage.Relaxed)
	if err != nil {
		if err != errStale && ctx.Err() == nil {
			d.s.log.Warn("phase two: reschedule", "xid", xid, "err", err)
		}
		return 0
	}
	if g.Parked {
		d.s.metrics.parkedChanged()
		d.s.log.Error("global parked", "xid", xid, "status", g.Status, "reason", g.Reason)
	} else {
		d.s.metrics.retries.Add(context.Background(), 1)
		d.s.log.Info("phase two will retry", "xid", xid, "attempt", g.Attempts, "at", g.NextAt, "reason", g.Reason)
	}
	return g.Status
}

// backoff is the wait before round n+1 (n counted from 1): RetryBase·2^(n-1),
// capped at RetryMax, jittered so that retries of many globals spread out.
func (d *driver) backoff(n int) time.Duration {
	return backoff.Policy{Base: d.s.cfg.RetryBase, Max: d.s.cfg.RetryMax}.Delay(n - 1)
}

func pick(cond bool, a, b storage.Status) storage.Status {
	if cond {
		return a
	}
	return b
}
