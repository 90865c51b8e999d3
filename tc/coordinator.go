package tc

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/xact-io/xact/internal/failpoint"
	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
)

// Status shorthands.
const (
	stBegin                  = xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN
	stCommitting             = xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTING
	stCommitRetrying         = xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_RETRYING
	stRollbacking            = xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKING
	stRollbackRetrying       = xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_RETRYING
	stTimeoutRollbacking     = xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACKING
	stTimeoutRollbackRetry   = xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACK_RETRYING
	stAsyncCommitting        = xactpb.GlobalStatus_GLOBAL_STATUS_ASYNC_COMMITTING
	stCommitted              = xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED
	stCommitFailed           = xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_FAILED
	stRollbacked             = xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED
	stRollbackFailed         = xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_FAILED
	stTimeoutRollbacked      = xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACKED
	stTimeoutRollbackFailed  = xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACK_FAILED
	stCommitRetryTimeout     = xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_RETRY_TIMEOUT
	stRollbackRetryTimeout   = xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_RETRY_TIMEOUT
	brPhaseOneFailed         = xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_FAILED
	brPhaseOneDone           = xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_DONE
	brPhaseOneTimeout        = xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_TIMEOUT
	brCommitted              = xactpb.BranchStatus_BRANCH_STATUS_PHASE_TWO_COMMITTED
	brCommitFailedRetryable  = xactpb.BranchStatus_BRANCH_STATUS_PHASE_TWO_COMMIT_FAILED_RETRYABLE
	brCommitFailedFinal      = xactpb.BranchStatus_BRANCH_STATUS_PHASE_TWO_COMMIT_FAILED_UNRETRYABLE
	brRollbacked             = xactpb.BranchStatus_BRANCH_STATUS_PHASE_TWO_ROLLBACKED
	brRollbackFailedRetryble = xactpb.BranchStatus_BRANCH_STATUS_PHASE_TWO_ROLLBACK_FAILED_RETRYABLE
	brRollbackFailedFinal    = xactpb.BranchStatus_BRANCH_STATUS_PHASE_TWO_ROLLBACK_FAILED_UNRETRYABLE
)

// commitFamily, rollbackFamily and timeoutFamily are the protocol's
// status families (protocol/status.go) under the names the TC's rules use.
func commitFamily(s storage.Status) bool   { return protocol.DecidedCommit(s) }
func rollbackFamily(s storage.Status) bool { return protocol.DecidedRollback(s) }
func timeoutFamily(s storage.Status) bool  { return protocol.TimedOut(s) }

type coordinator struct {
	xactpb.UnimplementedCoordinatorServer
	s *Server
}

func (c *coordinator) checkXID(xid string) error {
	return protocol.ValidateXID(xid)
}

func (c *coordinator) Begin(ctx context.Context, req *xactpb.BeginRequest) (*xactpb.BeginResponse, error) {
	if req.GetXid() != "" {
		// The explicit Begin of a lazily begun global (its TM is about to
		// send the XID to another service). Safe to repeat.
		if err := c.s.beginLazy(ctx, req.GetXid(), req); err != nil {
			return nil, err
		}
		g, err := c.s.ledger.GetGlobal(ctx, req.GetXid())
		if err != nil {
			return nil, err
		}
		if g.Status != stBegin {
			return nil, fmt.Errorf("%w: %s is %v", protocol.ErrNotBegin, g.XID, g.Status)
		}
		return &xactpb.BeginResponse{Xid: g.XID}, nil
	}
	g, err := c.s.newGlobal(c.s.xids.next(), req)
	if err != nil {
		return nil, err
	}
	// Relaxed: a Begin lost in a crash is harmless — no branch can have
	// registered (registration is durable and syncs this write too), so the
	// TM's next call finds no transaction and nothing needs compensating.
	if err := c.s.ledger.CreateGlobal(ctx, g, storage.Relaxed); err != nil {
		return nil, err
	}
	c.s.metrics.began(false)
	failpoint.Hit("tc/begin/after-store")
	return &xactpb.BeginResponse{Xid: g.XID}, nil
}

// Reserve hands out an XID namespace for lazily begun globals.
func (c *coordinator) Reserve(ctx context.Context, req *xactpb.ReserveRequest) (*xactpb.ReserveResponse, error) {
	return &xactpb.ReserveResponse{XidPrefix: c.s.xids.reserve(), CarriesReports: true}, nil
}

// newGlobal validates a BeginRequest and makes the global it asks for.
func (s *Server) newGlobal(xid string, req *xactpb.BeginRequest) (*storage.Global, error) {
	cfg := &s.cfg
	if len(req.GetName()) > 256 || !utf8.ValidString(req.GetName()) {
		return nil, fmt.Errorf("%w: name must be at most 256 bytes of UTF-8", protocol.ErrInvalidArgument)
	}
	timeout := time.Duration(req.GetTimeoutMs()) * time.Millisecond
	switch {
	case req.GetTimeoutMs() < 0:
		return nil, fmt.Errorf("%w: negative timeout", protocol.ErrInvalidArgument)
	case timeout == 0:
		timeout = cfg.DefaultTimeout
	case timeout > cfg.MaxTimeout:
		return nil, fmt.Errorf("%w: timeout %v exceeds the server's maximum %v", protocol.ErrInvalidArgument, timeout, cfg.MaxTimeout)
	}
	now := time.Now()
	return &storage.Global{
		XID:       xid,
		Name:      req.GetName(),
		Status:    stBegin,
		Timeout:   timeout,
		BeganAt:   now,
		Deadline:  now.Add(timeout),
		NextAt:    now.Add(timeout),
		UpdatedAt: now,
	}, nil
}

// lazyGlobal makes the lazily begun global xid that req asks for. The XID
// must be one of this node's reserved namespaces, or in a cluster one of
// any coordinator's: a TM reserves on one and begins through whichever
// its balancer picks.
func (s *Server) lazyGlobal(xid string, req *xactpb.BeginRequest) (*storage.Global, error) {
	if !s.xids.reserved(xid, s.member != nil) {
		if s.member != nil {
			return nil, fmt.Errorf("%w: %q is not an XID of a namespace a coordinator reserved", protocol.ErrInvalidArgument, xid)
		}
		return nil, fmt.Errorf("%w: %q is not an XID of a namespace this coordinator (%s) reserved", protocol.ErrInvalidArgument, xid, s.cfg.NodeID)
	}
	return s.newGlobal(xid, req)
}

// beginLazy begins the lazily begun global xid as req asks, unless it is
// already stored (or finished: its tombstone refuses it again). Relaxed,
// like Begin: the decision that follows is durable and syncs it. (A first
// registration begins it in its own write, BeginRegisterBranch.)
func (s *Server) beginLazy(ctx context.Context, xid string, req *xactpb.BeginRequest) error {
	g, err := s.lazyGlobal(xid, req)
	if err != nil {
		return err
	}
	err = s.ledger.CreateGlobal(ctx, g, storage.Relaxed)
	if errors.Is(err, storage.ErrExists) {
		return nil
	}
	if err == nil {
		s.metrics.began(true)
		failpoint.Hit("tc/begin/after-store")
	}
	return err
}

func (c *coordinator) Commit(ctx context.Context, req *xactpb.CommitRequest) (*xactpb.CommitResponse, error) {
	if err := c.checkXID(req.GetXid()); err != nil {
		return nil, err
	}
	if err := c.s.checkReports(req.GetXid(), req.GetReports()); err != nil {
		return nil, err
	}
	st, err := c.s.decide(ctx, req.GetXid(), req.GetBegin(), req.GetReports(), toCommit, byTM)
	if err != nil {
		return nil, err
	}
	return &xactpb.CommitResponse{Status: st}, nil
}

func (c *coordinator) Rollback(ctx context.Context, req *xactpb.RollbackRequest) (*xactpb.RollbackResponse, error) {
	if err := c.checkXID(req.GetXid()); err != nil {
		return nil, err
	}
	if err := c.s.checkReports(req.GetXid(), req.GetReports()); err != nil {
		return nil, err
	}
	st, err := c.s.decide(ctx, req.GetXid(), req.GetBegin(), req.GetReports(), toRollback, byTM)
	if err != nil {
		return nil, err
	}
	return &xactpb.RollbackResponse{Status: st}, nil
}

func (c *coordinator) GetStatus(ctx context.Context, req *xactpb.GetStatusRequest) (*xactpb.GetStatusResponse, error) {
	if err := c.checkXID(req.GetXid()); err != nil {
		return nil, err
	}
	g, err := c.s.ledger.GetGlobal(ctx, req.GetXid())
	if err != nil {
		return nil, err
	}
	return &xactpb.GetStatusResponse{Status: g.Status}, nil
}

func (c *coordinator) checkKeys(resource string, keys []string) error {
	cfg := &c.s.cfg
	if resource == "" || len(resource) > 256 || !utf8.ValidString(resource) {
		return fmt.Errorf("%w: resource id must be 1-256 bytes of UTF-8", protocol.ErrInvalidArgument)
	}
	if len(keys) > cfg.MaxLockKeys {
		return fmt.Errorf("%w: %d lock keys, the limit is %d", protocol.ErrTooLarge, len(keys), cfg.MaxLockKeys)
	}
	for _, k := range keys {
		if k == "" || len(k) > cfg.MaxKeyBytes {
			return fmt.Errorf("%w: lock key of %d bytes (must be 1-%d)", protocol.ErrInvalidArgument, len(k), cfg.MaxKeyBytes)
		}
	}
	return nil
}

func (c *coordinator) RegisterBranch(ctx context.Context, req *xactpb.RegisterBranchRequest) (*xactpb.RegisterBranchResponse, error) {
	if err := c.checkXID(req.GetXid()); err != nil {
		return nil, err
	}
	if err := c.checkKeys(req.GetResourceId(), req.GetLockKeys()); err != nil {
		return nil, err
	}
	if len(req.GetApplicationData()) > c.s.cfg.MaxAppDataBytes {
		return nil, fmt.Errorf("%w: application data of %d bytes, the limit is %d", protocol.ErrTooLarge, len(req.GetApplicationData()), c.s.cfg.MaxAppDataBytes)
	}
	if _, ok := xactpb.BranchType_name[int32(req.GetBranchType())]; !ok {
		return nil, fmt.Errorf("%w: unknown branch type %d", protocol.ErrInvalidArgument, req.GetBranchType())
	}
	if err := c.s.checkReports(req.GetXid(), req.GetReports()); err != nil {
		return nil, err
	}
	var begin *storage.Global
	if req.GetBegin() != nil {
		var err error
		if begin, err = c.s.lazyGlobal(req.GetXid(), req.GetBegin()); err != nil {
			return nil, err
		}
	}
	if len(req.GetReports()) > 0 {
		// Earlier branches' phase-one reports, recorded before the
		// registration (Relaxed: the registration's durable write, or the
		// decision that refuses it, syncs them too).
		if err := c.s.recordCarriedLocked(ctx, req.GetXid(), req.GetReports()); err != nil {
			return nil, err
		}
	}
	now := time.Now()
	b := &storage.Branch{
		XID:          req.GetXid(),
		Resource:     req.GetResourceId(),
		Type:         req.GetBranchType(),
		Status:       xactpb.BranchStatus_BRANCH_STATUS_REGISTERED,
		LockKeys:     dedupe(req.GetLockKeys()),
		AppData:      req.GetApplicationData(),
		RegisteredAt: now,
	}
	var id int64
	var err error
	if begin != nil {
		// The first registration of a lazily begun global creates it in
		// the same write (a tombstone refuses it, I4).
		var created bool
		id, created, err = c.s.ledger.BeginRegisterBranch(ctx, begin, b, now)
		if err == nil && created {
			c.s.metrics.began(true)
			failpoint.Hit("tc/begin/after-store")
		}
	} else {
		id, err = c.s.ledger.RegisterBranch(ctx, b, now)
	}
	if err != nil {
		var lc *protocol.LockConflictError
		if errors.As(err, &lc) {
			c.s.metrics.conflicts.Add(context.Background(), 1, c.s.metrics.conflictRegister...)
		}
		return nil, c.annotateConflict(ctx, err)
	}
	failpoint.Hit("tc/register/after-store")
	return &xactpb.RegisterBranchResponse{BranchId: id}, nil
}

// annotateConflict marks a lock conflict whose holder is rolling back
// (protocol.LockConflictError.HolderRollingBack), so that the asking
// branch gives up at once instead of waiting for a lock whose release
// needs the database row lock it holds itself. Other errors pass
// unchanged; a holder that cannot be read leaves the conflict as it is.
func (c *coordinator) annotateConflict(ctx context.Context, err error) error {
	var lc *protocol.LockConflictError
	if !errors.As(err, &lc) || lc.Holder == "" {
		return err
	}
	g, gerr := c.s.ledger.GetGlobal(ctx, lc.Holder)
	// A holder that has finished meanwhile holds nothing any more: the
	// caller's next attempt gets the row.
	if gerr == nil && !g.Finished && !protocol.Final(g.Status) && rollbackFamily(g.Status) {
		lc.HolderRollingBack = true
	}
	return err
}

func dedupe(keys []string) []string {
	if len(keys) < 2 {
		return keys
	}
	seen := make(map[string]struct{}, len(keys))
	out := keys[:0:0]
	for _, k := range keys {
		if _, ok := seen[k]; !ok {
			seen[k] = struct{}{}
			out = append(out, k)
		}
	}
	return out
}

func (c *coordinator) ReportBranch(ctx context.Context, req *xactpb.ReportBranchRequest) (*xactpb.ReportBranchResponse, error) {
	if err := c.checkXID(req.GetXid()); err != nil {
		return nil, err
	}
	if err := c.s.checkReport(req.GetXid(), req); err != nil {
		return nil, err
	}
	// Serialized with decisions: I3 needs a failure report to be seen by a
	// concurrent commit, or to arrive after the decision.
	mu := c.s.stripe(req.GetXid())
	mu.Lock()
	defer mu.Unlock()
	g, err := c.s.ledger.GetGlobal(ctx, req.GetXid())
	if err != nil {
		return nil, err
	}
	if g.Status != stBegin {
		if req.GetNothingCommitted() && req.GetStatus() == brPhaseOneFailed && rollbackFamily(g.Status) && !g.Finished {
			return c.dropLate(ctx, req)
		}
		// A late report changes nothing once the decision is made.
		return nil, fmt.Errorf("%w: %v", protocol.ErrNotBegin, g.Status)
	}
	if err := c.s.recordReport(ctx, req, storage.Durable); err != nil {
		return nil, err
	}
	return &xactpb.ReportBranchResponse{}, nil
}

// maxCarriedReports caps the reports one request may carry.
const maxCarriedReports = 1024

// checkReport validates a phase-one report of a branch of xid, whether it
// came as a ReportBranch or carried by another request naming xid.
func (s *Server) checkReport(xid string, r *xactpb.ReportBranchRequest) error {
	if r.GetXid() != xid {
		return fmt.Errorf("%w: a report of %q carried by a request of %q", protocol.ErrInvalidArgument, r.GetXid(), xid)
	}
	switch r.GetStatus() {
	case brPhaseOneDone, brPhaseOneFailed, brPhaseOneTimeout:
	default:
		return fmt.Errorf("%w: a branch may report only phase-one outcomes, not %v", protocol.ErrInvalidArgument, r.GetStatus())
	}
	if len(r.GetApplicationData()) > s.cfg.MaxAppDataBytes {
		return fmt.Errorf("%w: application data too large", protocol.ErrTooLarge)
	}
	return nil
}

// checkReports validates the reports carried by a request of xid
// (RegisterBranch, Commit, Rollback), all before any is recorded.
func (s *Server) checkReports(xid string, rs []*xactpb.ReportBranchRequest) error {
	if len(rs) > maxCarriedReports {
		return fmt.Errorf("%w: %d reports carried, the limit is %d", protocol.ErrTooLarge, len(rs), maxCarriedReports)
	}
	for _, r := range rs {
		if err := s.checkReport(xid, r); err != nil {
			return err
		}
	}
	return nil
}

// recordReport records the phase-one report r of a branch whose global is
// in Begin. The caller holds r.Xid's stripe and checked r (checkReport).
func (s *Server) recordReport(ctx context.Context, r *xactpb.ReportBranchRequest, d storage.Durability) error {
	_, err := s.ledger.UpdateBranch(ctx, r.GetXid(), r.GetBranchId(), func(b *storage.Branch) error {
		b.Status = r.GetStatus()
		if r.GetNothingCommitted() && b.Type == xactpb.BranchType_BRANCH_TYPE_AT && b.Status == brPhaseOneFailed {
			// Nothing of it was committed, so nothing of it is to be
			// compensated: its rows are free now, and phase two skips it
			// (nothingCommitted).
			b.LocksReleased = true
		}
		if r.GetUpdateApplicationData() {
			b.AppData = r.GetApplicationData()
		}
		return nil
	}, d)
	return err
}

// recordCarriedLocked records, under xid's stripe, the reports a request
// of xid carries (see recordCarried).
func (s *Server) recordCarriedLocked(ctx context.Context, xid string, rs []*xactpb.ReportBranchRequest) error {
	mu := s.stripe(xid)
	mu.Lock()
	defer mu.Unlock()
	g, err := s.ledger.GetGlobal(ctx, xid)
	if errors.Is(err, storage.ErrNotFound) {
		// A global no one has begun has no branch to report on.
		return fmt.Errorf("%w: %s has no branch %d", protocol.ErrBranchNotFound, xid, rs[0].GetBranchId())
	}
	if err != nil {
		return err
	}
	return s.recordCarried(ctx, g, rs)
}

// recordCarried records the checked reports rs carried by a request of
// g's XID, as ReportBranch would record them, with Relaxed durability: the
// caller's durable write that follows (a registration, a decision) makes
// them durable too (the store syncs its log in commit order). The caller
// holds g's stripe, and g is current. A global no longer in Begin takes no
// report: as a late ReportBranch, it changes nothing (and is no error, so
// that a repeated decision is answered as usual). A report naming a branch
// the global never registered refuses them all, before any is recorded.
func (s *Server) recordCarried(ctx context.Context, g *storage.Global, rs []*xactpb.ReportBranchRequest) error {
	if len(rs) == 0 || g.Finished || g.Status != stBegin {
		return nil
	}
	for _, r := range rs {
		if id := r.GetBranchId(); id < 1 || id > g.BranchSeq {
			return fmt.Errorf("%w: %s has no branch %d", protocol.ErrBranchNotFound, g.XID, id)
		}
	}
	for _, r := range rs {
		if err := s.recordReport(ctx, r, storage.Relaxed); err != nil {
			return err
		}
	}
	return nil
}

// dropLate records a late nothing-committed report of an AT branch of a
// global that is rolling back (a timeout decided it while the branch's
// undo insert failed): the branch committed nothing, so phase two may skip
// it instead of sending a rollback its broken database may never answer.
// A round that meets the report while it records an answer skips the
// branch too (driver.rollback).
func (c *coordinator) dropLate(ctx context.Context, req *xactpb.ReportBranchRequest) (*xactpb.ReportBranchResponse, error) {
	_, err := c.s.ledger.UpdateBranch(ctx, req.GetXid(), req.GetBranchId(), func(b *storage.Branch) error {
		// Phase two may have tried it already (an UNKNOWN or FAILED
		// answer): the RM's word that no commit was sent still holds. A
		// branch that reported success, or is rolled back, is left alone.
		if b.Type == xactpb.BranchType_BRANCH_TYPE_AT && b.Status != brPhaseOneDone && b.Status != brRollbacked {
			b.Status, b.LocksReleased = brPhaseOneFailed, true
		}
		return nil
	}, storage.Durable)
	if err != nil {
		return nil, err
	}
	return &xactpb.ReportBranchResponse{}, nil
}

func (c *coordinator) QueryLocks(ctx context.Context, req *xactpb.QueryLocksRequest) (*xactpb.QueryLocksResponse, error) {
	if req.GetXid() != "" {
		if err := c.checkXID(req.GetXid()); err != nil {
			return nil, err
		}
	}
	if err := c.checkKeys(req.GetResourceId(), req.GetLockKeys()); err != nil {
		return nil, err
	}
	err := c.annotateConflict(ctx, c.s.ledger.CheckLocks(ctx, req.GetXid(), req.GetResourceId(), req.GetLockKeys()))
	var lc *protocol.LockConflictError
	switch {
	case err == nil:
		return &xactpb.QueryLocksResponse{Free: true}, nil
	case errors.As(err, &lc):
		c.s.metrics.conflicts.Add(context.Background(), 1, c.s.metrics.conflictQry...)
		return &xactpb.QueryLocksResponse{Free: false, ConflictKey: lc.Key, HolderXid: lc.Holder,
			HolderRollingBack: lc.HolderRollingBack}, nil
	default:
		return nil, err
	}
}

func (c *coordinator) Attach(stream xactpb.Coordinator_AttachServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stop := context.AfterFunc(c.s.bg, cancel)
	defer stop()
	err := c.s.hub.Serve(ctx, stream)
	if c.s.bg.Err() != nil {
		return protocol.ErrShuttingDown
	}
	return err
}
