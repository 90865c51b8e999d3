package rm

import (
	"context"
	"slices"

	"google.golang.org/grpc"

	"github.com/xact-io/xact/protocol/xactpb"
)

// A cluster of coordinators on a shared store drives each decided global
// from one coordinator, which pushes its phase two on the Attach streams
// it has. So an RM keeps a stream to every live coordinator: the
// coordinators name each other in the Welcome (xactpb.Welcome.peers) and
// send the list again when it changes (xactpb.Peers); the Client dials
// each address it learns (WithDialOptions, Dial) and runs an attach loop
// for it, besides the loop over its own connection (the seed). The
// coordinators followed are the union of the latest lists of the streams
// that are up, so that one coordinator's late view (a Welcome from one
// that has not seen a node join yet) does not drop a node another names;
// a coordinator that lost its lease sends an empty list. A coordinator
// no list names is let go; one that died stays named until its lease
// runs out, and its loop retries meanwhile.
//
// The seed's stream also reaches one of the coordinators, which then has
// two streams from this RM: the hub spreads actions over both, and a
// repeated action is idempotent.

// link is one attach loop's target.
type link struct {
	client xactpb.CoordinatorClient
	// nodeID and addr are those of a cluster's coordinator, "" for the
	// seed; conn is the connection dialed for it, nil for the seed.
	nodeID, addr string
	conn         *grpc.ClientConn
	// helloDirty is signalled when Serve changed the declaration while a
	// stream may be up: the stream's sender sends a new Hello.
	helloDirty chan struct{}
	cancel     context.CancelFunc // ends a peer's loop; nil for the seed

	// welcomedBy is the node id of the TC that welcomed the current
	// stream, "" while detached. Guarded by Client.mu.
	welcomedBy string
}

func newLink(client xactpb.CoordinatorClient, nodeID, addr string, conn *grpc.ClientConn) *link {
	return &link{client: client, nodeID: nodeID, addr: addr, conn: conn, helloDirty: make(chan struct{}, 1)}
}

// declare asks the link's current stream, if any, to send a new Hello.
func (l *link) declare() {
	select {
	case l.helloDirty <- struct{}{}:
	default: // already signalled; the Hello will carry this too
	}
}

// follow records src's coordinator's list of the live coordinators and
// makes the set of peer links match the union of the lists of the streams
// that are up: a loop for each coordinator not followed yet (or whose
// address changed), and none for one no list names.
func (c *Client) follow(src *link, peers []*xactpb.Peer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.state != stateStarted {
		return
	}
	if src != c.seed && c.mu.peers[src.nodeID] != src {
		return // a link let go while its Welcome was on the way
	}
	if len(peers) == 0 && len(c.mu.lists[src]) == 0 {
		return // a coordinator that runs alone
	}
	c.mu.lists[src] = peers
	if !c.cfg.follow {
		if len(peers) > 1 && !c.mu.warnedAlone {
			c.mu.warnedAlone = true
			c.cfg.log.Warn("rm: the coordinators form a cluster, but this client attaches to one only (make it with rm.Dial or rm.WithDialOptions): phase two driven by another waits for this RM",
				"client_id", c.cfg.clientID, "coordinators", len(peers))
		}
		return
	}
	want := make(map[string]string)
	for _, list := range c.mu.lists {
		for _, p := range list {
			if p.GetNodeId() != "" && p.GetAddr() != "" {
				want[p.GetNodeId()] = p.GetAddr()
			}
		}
	}
	for id, l := range c.mu.peers {
		if addr, ok := want[id]; !ok || addr != l.addr {
			c.cfg.log.Info("rm: letting a coordinator go", "client_id", c.cfg.clientID, "node_id", id, "addr", l.addr)
			l.cancel()
			delete(c.mu.peers, id)
			delete(c.mu.lists, l)
		}
	}
	for id, addr := range want {
		if _, ok := c.mu.peers[id]; ok {
			continue
		}
		conn, err := grpc.NewClient(addr, c.cfg.peerDialOptions()...)
		if err != nil {
			c.cfg.log.Warn("rm: cannot dial a coordinator of the cluster", "client_id", c.cfg.clientID, "node_id", id, "addr", addr, "err", err)
			continue
		}
		ctx, cancel := context.WithCancel(c.mu.root)
		l := newLink(xactpb.NewCoordinatorClient(conn), id, addr, conn)
		l.cancel = cancel
		c.mu.peers[id] = l
		c.cfg.log.Info("rm: attaching to a coordinator of the cluster", "client_id", c.cfg.clientID, "node_id", id, "addr", addr)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer conn.Close()
			c.attachLoop(ctx, l, nil, nil)
		}()
	}
}

// coordinators returns the node ids of the coordinators a welcomed stream
// is up to, sorted. Called with c.mu held.
func (c *Client) coordinatorsLocked() []string {
	var ids []string
	if c.seed != nil && c.seed.welcomedBy != "" {
		ids = append(ids, c.seed.welcomedBy)
	}
	for _, l := range c.mu.peers {
		if l.welcomedBy != "" {
			ids = append(ids, l.welcomedBy)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}
