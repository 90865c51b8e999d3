package rm

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xact-io/xact/protocol/xactpb"
)

// clusterNode is one coordinator of a fake cluster on a real TCP port: it
// welcomes an RM with the cluster's peer list, pushes a new list on
// demand, and counts the streams open to it and the Hellos it received.
type clusterNode struct {
	xactpb.UnimplementedCoordinatorServer
	id, addr string
	peers    func() []*xactpb.Peer

	mu      sync.Mutex
	streams int                  // Attach streams open now
	hellos  []*xactpb.Hello      // every Hello received
	push    []chan *xactpb.Peers // one per open stream
}

func (n *clusterNode) Attach(s grpc.BidiStreamingServer[xactpb.RMMessage, xactpb.TCMessage]) error {
	msg, err := s.Recv()
	if err != nil {
		return err
	}
	if msg.GetHello() == nil {
		return status.Error(codes.InvalidArgument, "want hello first")
	}
	push := make(chan *xactpb.Peers, 4)
	n.mu.Lock()
	n.streams++
	n.hellos = append(n.hellos, msg.GetHello())
	n.push = append(n.push, push)
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.streams--
		n.push = slices.DeleteFunc(n.push, func(c chan *xactpb.Peers) bool { return c == push })
		n.mu.Unlock()
	}()
	if err := s.Send(&xactpb.TCMessage{Body: &xactpb.TCMessage_Welcome{Welcome: &xactpb.Welcome{NodeId: n.id, Peers: n.peers()}}}); err != nil {
		return err
	}
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		for {
			msg, err := s.Recv()
			if err != nil {
				return
			}
			if h := msg.GetHello(); h != nil {
				n.mu.Lock()
				n.hellos = append(n.hellos, h)
				n.mu.Unlock()
			}
		}
	}()
	for {
		select {
		case p := <-push:
			if err := s.Send(&xactpb.TCMessage{Body: &xactpb.TCMessage_Peers{Peers: p}}); err != nil {
				return err
			}
		case <-recvDone:
			return nil
		case <-s.Context().Done():
			return nil
		}
	}
}

func (n *clusterNode) state() (streams, hellos int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.streams, len(n.hellos)
}

// pushPeers sends a new peer list on every stream open to n.
func (n *clusterNode) pushPeers(p []*xactpb.Peer) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.push {
		c <- &xactpb.Peers{Peers: p}
	}
}

// fakeCluster starts coordinators a, b and c on loopback ports, each
// naming all three as its peers (the list is the cluster's: set it with
// setPeers).
type fakeCluster struct {
	nodes []*clusterNode
	mu    sync.Mutex
	peers []*xactpb.Peer
}

func newFakeCluster(t *testing.T) *fakeCluster {
	fc := &fakeCluster{}
	for _, id := range []string{"a", "b", "c"} {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		n := &clusterNode{id: id, addr: lis.Addr().String(), peers: fc.current}
		s := grpc.NewServer()
		xactpb.RegisterCoordinatorServer(s, n)
		go s.Serve(lis)
		t.Cleanup(s.Stop)
		fc.nodes = append(fc.nodes, n)
		fc.peers = append(fc.peers, &xactpb.Peer{NodeId: id, Addr: n.addr})
	}
	return fc
}

func (fc *fakeCluster) current() []*xactpb.Peer {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.peers
}

func (fc *fakeCluster) setPeers(p []*xactpb.Peer) {
	fc.mu.Lock()
	fc.peers = p
	fc.mu.Unlock()
}

// TestFollowsCluster: a Client dialed to one coordinator of a cluster
// attaches to all three named in the Welcome, declares a new resource on
// every stream, lets one go when a pushed list no longer names it, and
// attaches to it again when a list names it again.
func TestFollowsCluster(t *testing.T) {
	fc := newFakeCluster(t)
	a, b, c := fc.nodes[0], fc.nodes[1], fc.nodes[2]
	cl, err := Dial(a.addr, WithClientID("peers-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Serve("res-1", xactpb.BranchType_BRANCH_TYPE_TCC, noopHandler{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "attached to a, b and c", func() bool {
		return slices.Equal(cl.Status().Coordinators, []string{"a", "b", "c"})
	})
	// a has the seed's stream and a's own; b and c one each.
	waitUntil(t, "streams a=2 b=1 c=1", func() bool {
		sa, _ := a.state()
		sb, _ := b.state()
		sc, _ := c.state()
		return sa == 2 && sb == 1 && sc == 1
	})
	if st := cl.Status(); !st.Attached || st.NodeID != "a" {
		t.Fatalf("Status = %+v, want the seed attached to a", st)
	}

	// A resource served later is declared on every stream.
	_, hb := b.state()
	_, hc := c.state()
	if err := cl.Serve("res-2", xactpb.BranchType_BRANCH_TYPE_TCC, noopHandler{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a new Hello on b and c", func() bool {
		_, nb := b.state()
		_, nc := c.state()
		return nb > hb && nc > hc
	})

	// c's lease runs out: a and b push the list without it, and c, which
	// knows it is out, an empty one. While any stream's latest list names
	// c, it is kept (one coordinator's late view does not drop a node).
	fc.setPeers(fc.current()[:2])
	a.pushPeers(fc.current())
	b.pushPeers(fc.current())
	time.Sleep(50 * time.Millisecond) // c's stream still names c: give a wrong drop a chance to show
	if s, _ := c.state(); s != 1 {
		t.Fatalf("c let go while its own stream's list still names it")
	}
	c.pushPeers(nil)
	waitUntil(t, "c let go", func() bool {
		sc, _ := c.state()
		return sc == 0 && slices.Equal(cl.Status().Coordinators, []string{"a", "b"})
	})
	// c is back.
	fc.setPeers(append(fc.current()[:2:2], &xactpb.Peer{NodeId: "c", Addr: c.addr}))
	b.pushPeers(fc.current())
	waitUntil(t, "c attached again", func() bool {
		sc, _ := c.state()
		return sc == 1 && slices.Equal(cl.Status().Coordinators, []string{"a", "b", "c"})
	})

	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	for _, n := range fc.nodes {
		waitUntil(t, "streams closed on "+n.id, func() bool { s, _ := n.state(); return s == 0 })
	}
}

// TestNewAttachesOnlyItsConnection: a Client made with New and no dial
// options keeps its one stream (it cannot dial the others with the
// right credentials); the cluster's other coordinators see no stream.
func TestNewAttachesOnlyItsConnection(t *testing.T) {
	fc := newFakeCluster(t)
	a, b := fc.nodes[0], fc.nodes[1]
	conn, err := grpc.NewClient(a.addr, (&config{}).peerDialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cl := New(conn)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The Welcome was handled before Start returned: a peer link would
	// exist by now.
	if got := cl.Status().Coordinators; !slices.Equal(got, []string{"a"}) {
		t.Fatalf("Coordinators = %v, want [a]", got)
	}
	cl.mu.Lock()
	peers := len(cl.mu.peers)
	cl.mu.Unlock()
	if peers != 0 {
		t.Fatalf("%d peer links, want 0", peers)
	}
	if s, _ := b.state(); s != 0 {
		t.Fatalf("b has %d streams, want 0", s)
	}
}

const testWait = 10 * time.Second

type noopHandler struct{}

func (noopHandler) Commit(context.Context, Action) error   { return nil }
func (noopHandler) Rollback(context.Context, Action) error { return nil }

// waitUntil polls cond until it holds or testWait passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
