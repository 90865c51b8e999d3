package tc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
)

// cluster is a store that several coordinators share
// (storage/shareddb): each joins it under its node id with a lease, and
// drives (phase two, retries, timeouts) only the decided globals it owns.
// The store fences every write to a decided global by its owner and
// epoch, so a coordinator that lost its lease cannot overwrite the work of
// the one that took over; the coordinator also stops pushing actions
// before its lease can run out (member.validUntil).
type cluster interface {
	Join(ctx context.Context, id, addr string, lease time.Duration) (int64, error)
	Renew(ctx context.Context) error
	Leave(ctx context.Context) error
	Claim(ctx context.Context, xid string) (bool, error)
	Nodes(ctx context.Context) ([]storage.Node, error)
}

// member is this coordinator's membership of a cluster.
type member struct {
	c     cluster
	lease time.Duration
	epoch int64
	// validUntil is when this coordinator must stop driving unless a
	// renewal succeeds first: two thirds of a lease after the start of
	// the last successful renewal (the database's lease runs a full
	// lease from a moment no earlier than that start), in Unix
	// nanoseconds of the local monotonic-backed clock.
	validUntil atomic.Int64
	lost       atomic.Bool // the epoch was replaced: never drive again
	listing    atomic.Bool // a refreshPeers is running
}

// join makes this server a member if its store is a cluster: it refuses
// to start when a live coordinator holds its node id.
func (s *Server) join(ctx context.Context) error {
	c, ok := s.store.(cluster)
	if !ok {
		return nil
	}
	// A coordinator restarted after a crash finds its own previous lease
	// still running: it waits for it to run out (at most a lease), and
	// refuses to start only if the id's lease is still renewed after
	// that (another live coordinator has the id).
	giveUp := time.Now().Add(s.cfg.Lease * 3 / 2)
	var start time.Time
	var epoch int64
	for {
		start = time.Now()
		var err error
		epoch, err = c.Join(ctx, s.cfg.NodeID, s.advertiseAddr(), s.cfg.Lease)
		if err == nil {
			break
		}
		if !errors.Is(err, storage.ErrNodeLive) || time.Now().After(giveUp) {
			return fmt.Errorf("tc: join the coordinators of the shared store as %q: %w", s.cfg.NodeID, err)
		}
		s.log.Info("waiting for the previous lease on this node id to run out", "node_id", s.cfg.NodeID, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.cfg.Lease / 10):
		}
	}
	m := &member{c: c, lease: s.cfg.Lease, epoch: epoch}
	m.validUntil.Store(start.Add(s.cfg.Lease * 2 / 3).UnixNano())
	s.member = m
	s.log.Info("joined the coordinators of the shared store", "node_id", s.cfg.NodeID, "epoch", epoch, "lease", s.cfg.Lease,
		"advertise_addr", s.advertiseAddr())
	return nil
}

// advertiseAddr is the address this coordinator records for clients:
// Config.AdvertiseAddr, or the listen address with the host name in
// place of an unspecified host.
func (s *Server) advertiseAddr() string {
	if s.cfg.AdvertiseAddr != "" {
		return s.cfg.AdvertiseAddr
	}
	addr := s.lis.Addr().String()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil && name != "" {
			return net.JoinHostPort(name, port)
		}
	}
	return addr
}

// refreshPeers tells the attached RMs which coordinators are live (the
// hub sends the list only when it changed), so that each RM keeps a
// stream to every one of them.
func (s *Server) refreshPeers(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.member.lease/3)
	defer cancel()
	nodes, err := s.member.c.Nodes(ctx)
	if err != nil {
		s.log.Warn("list the coordinators of the shared store", "err", err)
		return
	}
	var peers []*xactpb.Peer
	for _, n := range nodes {
		if n.Live && n.Addr != "" {
			peers = append(peers, &xactpb.Peer{NodeId: n.ID, Addr: n.Addr})
		}
	}
	s.hub.SetPeers(peers)
}

// heartbeat renews the lease every third of it until the server stops.
func (s *Server) heartbeat() {
	m := s.member
	s.refreshPeers(s.bg)
	t := time.NewTicker(m.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-s.bg.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(s.bg, m.lease/3)
		err := m.c.Renew(ctx)
		cancel()
		switch {
		case err == nil:
			m.validUntil.Store(start.Add(m.lease * 2 / 3).UnixNano())
			// Off the heartbeat's path: a slow listing must not delay the
			// next renewal.
			if m.listing.CompareAndSwap(false, true) {
				s.wg.Add(1) // the heartbeat's own count keeps Wait from passing
				go func() {
					defer s.wg.Done()
					defer m.listing.Store(false)
					s.refreshPeers(s.bg)
				}()
			}
		case m.lost.Load():
		case s.bg.Err() != nil:
			return
		default:
			// Tell the RMs nothing about the cluster while this node may
			// be cut off from it: its view would be stale.
			s.hub.SetPeers(nil)
			if errors.Is(err, storage.ErrLeaseLost) {
				if !m.lost.Swap(true) {
					s.log.Error("lease lost: another coordinator joined under this node id; this one no longer drives any global (restart it under its own id)",
						"node_id", s.cfg.NodeID, "epoch", m.epoch, "err", err)
				}
				continue
			}
			s.log.Warn("lease renewal failed; driving stops when the lease may run out", "node_id", s.cfg.NodeID, "err", err)
		}
	}
}

// leave ends the lease, so that the others take over at once.
func (s *Server) leave() {
	if s.member == nil || s.member.lost.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.member.c.Leave(ctx); err != nil {
		s.log.Warn("leave the coordinators of the shared store", "err", err)
	}
}

// driveCtx returns the context a phase-two round of xid runs in, and
// whether this coordinator may drive it at all: always without a cluster;
// in one, only while its lease is valid (the context ends when it may run
// out) and only a global it owns or could claim (decided: its own
// decision made it the owner).
func (s *Server) driveCtx(xid string, decided bool) (context.Context, context.CancelFunc, bool) {
	m := s.member
	if m == nil {
		return s.bg, func() {}, true
	}
	until := time.Unix(0, m.validUntil.Load())
	if m.lost.Load() || !time.Now().Before(until) {
		return nil, nil, false
	}
	ctx, cancel := context.WithDeadline(s.bg, until)
	if !decided {
		ok, err := m.c.Claim(ctx, xid)
		if err != nil || !ok {
			if err != nil && ctx.Err() == nil {
				s.log.Warn("phase two: claim", "xid", xid, "err", err)
			}
			cancel()
			return nil, nil, false
		}
	}
	return ctx, cancel, true
}
