package tc

import (
	"context"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
)

type admin struct {
	xactpb.UnimplementedAdminServer
	s *Server
}

func (a *admin) ListGlobals(ctx context.Context, req *xactpb.ListGlobalsRequest) (*xactpb.ListGlobalsResponse, error) {
	limit := int(req.GetLimit())
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	gs, err := a.s.ledger.ListGlobals(ctx, storage.Filter{Statuses: req.GetStatuses(), ParkedOnly: req.GetParkedOnly(), Limit: limit})
	if err != nil {
		return nil, err
	}
	resp := &xactpb.ListGlobalsResponse{}
	for _, g := range gs {
		resp.Globals = append(resp.Globals, GlobalToPB(g))
	}
	return resp, nil
}

func (a *admin) ShowGlobal(ctx context.Context, req *xactpb.ShowGlobalRequest) (*xactpb.ShowGlobalResponse, error) {
	if err := (&coordinator{s: a.s}).checkXID(req.GetXid()); err != nil {
		return nil, err
	}
	g, err := a.s.ledger.GetGlobal(ctx, req.GetXid())
	if err != nil {
		return nil, err
	}
	resp := &xactpb.ShowGlobalResponse{Global: GlobalToPB(g)}
	if g.Finished {
		return resp, nil
	}
	bs, err := a.s.ledger.Branches(ctx, g.XID)
	if err != nil {
		return nil, err
	}
	for _, b := range bs {
		resp.Branches = append(resp.Branches, BranchToPB(b))
	}
	locks, err := a.s.ledger.Locks(ctx, g.XID, 0)
	if err != nil {
		return nil, err
	}
	for _, l := range locks {
		resp.Locks = append(resp.Locks, lockToPB(l))
	}
	return resp, nil
}

func (a *admin) ForceCommit(ctx context.Context, req *xactpb.ForceRequest) (*xactpb.ForceResponse, error) {
	if err := (&coordinator{s: a.s}).checkXID(req.GetXid()); err != nil {
		return nil, err
	}
	a.s.log.Info("operator: force commit", "xid", req.GetXid())
	st, err := a.s.decide(ctx, req.GetXid(), nil, nil, toCommit, byOperator)
	if err != nil {
		return nil, err
	}
	return &xactpb.ForceResponse{Status: st}, nil
}

func (a *admin) ForceRollback(ctx context.Context, req *xactpb.ForceRequest) (*xactpb.ForceResponse, error) {
	if err := (&coordinator{s: a.s}).checkXID(req.GetXid()); err != nil {
		return nil, err
	}
	a.s.log.Info("operator: force rollback", "xid", req.GetXid())
	st, err := a.s.decide(ctx, req.GetXid(), nil, nil, toRollback, byOperator)
	if err != nil {
		return nil, err
	}
	return &xactpb.ForceResponse{Status: st}, nil
}

func (a *admin) ListLocks(ctx context.Context, req *xactpb.ListLocksRequest) (*xactpb.ListLocksResponse, error) {
	if req.GetXid() != "" {
		if err := (&coordinator{s: a.s}).checkXID(req.GetXid()); err != nil {
			return nil, err
		}
	}
	limit := int(req.GetLimit())
	if limit <= 0 || limit > 100000 {
		limit = 100000
	}
	locks, err := a.s.ledger.Locks(ctx, req.GetXid(), limit)
	if err != nil {
		return nil, err
	}
	resp := &xactpb.ListLocksResponse{}
	for _, l := range locks {
		resp.Locks = append(resp.Locks, lockToPB(l))
	}
	return resp, nil
}

// GlobalToPB converts a stored global to its wire form. A finished
// global has no reason: the one stored is the last failure of a phase two
// that has succeeded since (its History keeps it).
func GlobalToPB(g *storage.Global) *xactpb.GlobalTransaction {
	pb := &xactpb.GlobalTransaction{
		Xid:              g.XID,
		Name:             g.Name,
		Status:           g.Status,
		TimeoutMs:        g.Timeout.Milliseconds(),
		BeginUnixMs:      unixMs(g.BeganAt),
		DeadlineUnixMs:   unixMs(g.Deadline),
		NextActionUnixMs: unixMs(g.NextAt),
		Attempts:         int32(g.Attempts),
		Parked:           g.Parked,
		Reason:           g.Reason,
		UpdatedUnixMs:    unixMs(g.UpdatedAt),
		BranchSeq:        g.BranchSeq,
	}
	if g.Finished {
		pb.Reason = ""
	}
	for _, e := range g.History {
		pb.History = append(pb.History, &xactpb.RetryEvent{AtUnixMs: unixMs(e.At), What: e.What})
	}
	return pb
}

// BranchToPB converts a stored branch to its wire form.
func BranchToPB(b *storage.Branch) *xactpb.Branch {
	return &xactpb.Branch{
		Xid:              b.XID,
		BranchId:         b.ID,
		ResourceId:       b.Resource,
		BranchType:       b.Type,
		Status:           b.Status,
		LockKeys:         b.LockKeys,
		ApplicationData:  b.AppData,
		RegisteredUnixMs: unixMs(b.RegisteredAt),
		Reason:           b.Reason,
		Attempts:         int32(b.Attempts),
	}
}

func lockToPB(l storage.Lock) *xactpb.RowLock {
	return &xactpb.RowLock{ResourceId: l.Resource, Key: l.Key, Xid: l.XID, BranchId: l.BranchID}
}
