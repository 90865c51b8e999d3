// Package hub keeps the RMs attached to the coordinator and delivers
// phase-two actions to them.
//
// An RM opens one Attach stream, declares the resources it serves in a
// Hello, and from then on receives Actions and answers with Results. The hub
// routes an action to any attached session serving the action's resource
// and branch type (round robin), packs whatever is queued for one session into a single
// Actions message, and matches answers to waiting callers by request id. An
// action that finds no session, loses its session, or gets no answer within
// its context's deadline has an UNKNOWN outcome: the caller retries later.
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/xact-io/xact/protocol/xactpb"
)

// ErrNoHello: the first message of an Attach stream was not a Hello.
var ErrNoHello = errors.New("hub: first message on an attach stream must be Hello")

// Result is an RM's answer to one action.
type Result struct {
	Outcome xactpb.Outcome
	Reason  string
}

// Stream is the server side of an Attach stream.
type Stream interface {
	Context() context.Context
	Send(*xactpb.TCMessage) error
	Recv() (*xactpb.RMMessage, error)
}

// Hub is the set of attached RM sessions.
type Hub struct {
	nodeID   string
	log      *slog.Logger
	seq      atomic.Uint64
	onAttach func([]Route)

	mu struct {
		sync.Mutex
		sessions map[*session]struct{}
		byRoute  map[Route][]*session
		next     map[Route]int // round-robin cursor per route
		closed   bool
		// peers are the live coordinators of the cluster (nil alone),
		// named in every Welcome and sent again when they change.
		peers []*xactpb.Peer
	}
}

// New returns an empty hub. onAttach, if not nil, is called with the
// routes an RM declares whenever it attaches or declares again, once the
// hub routes actions to it: phase two that found no RM for those routes
// can be tried again at once. It runs on the stream's goroutine and must
// not block.
func New(nodeID string, log *slog.Logger, onAttach func([]Route)) *Hub {
	h := &Hub{nodeID: nodeID, log: log, onAttach: onAttach}
	h.mu.sessions = map[*session]struct{}{}
	h.mu.byRoute = map[Route][]*session{}
	h.mu.next = map[Route]int{}
	return h
}

// Sessions is the number of attached RM sessions.
func (h *Hub) Sessions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.mu.sessions)
}

// Route is what an action is routed by: its resource and branch type.
type Route struct {
	Resource string
	Type     xactpb.BranchType
}

// routes reads the declaration of a Hello: its exact routes, or (from an RM
// that sends none) every resource x branch type pair, all types if none is
// named.
func routes(h *xactpb.Hello) []Route {
	var out []Route
	for _, r := range h.GetRoutes() {
		out = append(out, Route{r.GetResourceId(), r.GetBranchType()})
	}
	if len(out) > 0 {
		return out
	}
	types := h.GetBranchTypes()
	if len(types) == 0 {
		for t := range xactpb.BranchType_name {
			types = append(types, xactpb.BranchType(t))
		}
	}
	for _, res := range h.GetResourceIds() {
		for _, t := range types {
			out = append(out, Route{res, t})
		}
	}
	return out
}

type session struct {
	clientID string
	stream   Stream
	outbox   chan *xactpb.BranchAction
	done     chan struct{} // closed when the session ends
	// peersDirty is signalled when the cluster's peers changed: the
	// sender sends the new list.
	peersDirty chan struct{}

	mu struct {
		sync.Mutex
		pending map[uint64]chan Result
		routes  []Route
		ended   bool
	}
}

// Serve runs one Attach stream until it ends or ctx is done. It returns
// when the stream is finished; every action in flight on it becomes UNKNOWN.
func (h *Hub) Serve(ctx context.Context, stream Stream) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	hello := first.GetHello()
	if hello == nil {
		return ErrNoHello
	}
	s := &session{
		clientID:   hello.GetClientId(),
		stream:     stream,
		outbox:     make(chan *xactpb.BranchAction, 4096),
		done:       make(chan struct{}),
		peersDirty: make(chan struct{}, 1),
	}
	s.mu.pending = map[uint64]chan Result{}
	// Index the session before the Welcome: once welcomed, an RM may expect
	// its phase-two work to be routed to it.
	if err := h.add(s, routes(hello)); err != nil {
		return err
	}
	welcome := &xactpb.Welcome{NodeId: h.nodeID, Peers: h.peers()}
	if err := stream.Send(&xactpb.TCMessage{Body: &xactpb.TCMessage_Welcome{Welcome: welcome}}); err != nil {
		h.remove(s)
		return err
	}
	h.log.Info("rm attached", "client", s.clientID, "resources", hello.GetResourceIds())
	h.attached(routes(hello))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sendErr := make(chan error, 1)
	go func() { sendErr <- s.sendLoop(ctx, h.peers) }()

	recvErr := make(chan error, 1)
	go func() {
		for {
			msg, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			switch b := msg.GetBody().(type) {
			case *xactpb.RMMessage_Hello:
				rs := routes(b.Hello)
				h.redeclare(s, rs)
				h.attached(rs)
			case *xactpb.RMMessage_Results:
				s.deliver(b.Results.GetResults())
			}
		}
	}()

	select {
	case err = <-recvErr:
	case err = <-sendErr:
	case <-ctx.Done():
		err = ctx.Err()
	}
	cancel()
	h.remove(s)
	// The receive goroutine ends when the handler returns: gRPC cancels the
	// stream, and Recv fails.
	h.log.Info("rm detached", "client", s.clientID, "err", err)
	return err
}

func (h *Hub) attached(rs []Route) {
	if h.onAttach != nil && len(rs) > 0 {
		h.onAttach(rs)
	}
}

func (h *Hub) add(s *session, rs []Route) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mu.closed {
		return errors.New("hub: closed")
	}
	h.mu.sessions[s] = struct{}{}
	h.indexLocked(s, rs)
	return nil
}

func (h *Hub) indexLocked(s *session, rs []Route) {
	s.mu.Lock()
	old := s.mu.routes
	s.mu.routes = append([]Route(nil), rs...)
	s.mu.Unlock()
	h.unindexLocked(s, old)
	for _, r := range rs {
		if !contains(h.mu.byRoute[r], s) {
			h.mu.byRoute[r] = append(h.mu.byRoute[r], s)
		}
	}
}

func (h *Hub) unindexLocked(s *session, rs []Route) {
	for _, r := range rs {
		h.mu.byRoute[r] = without(h.mu.byRoute[r], s)
		if len(h.mu.byRoute[r]) == 0 {
			delete(h.mu.byRoute, r)
			delete(h.mu.next, r)
		}
	}
}

func (h *Hub) redeclare(s *session, rs []Route) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.mu.sessions[s]; ok {
		h.indexLocked(s, rs)
	}
}

func (h *Hub) remove(s *session) {
	h.mu.Lock()
	delete(h.mu.sessions, s)
	s.mu.Lock()
	rs := s.mu.routes
	s.mu.Unlock()
	h.unindexLocked(s, rs)
	h.mu.Unlock()
	s.end()
}

// end fails every pending action with UNKNOWN.
func (s *session) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.ended {
		return
	}
	s.mu.ended = true
	close(s.done)
	for id, ch := range s.mu.pending {
		ch <- Result{Outcome: xactpb.Outcome_OUTCOME_UNKNOWN, Reason: "rm detached before answering"}
		delete(s.mu.pending, id)
	}
}

func (s *session) deliver(results []*xactpb.BranchResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range results {
		ch, ok := s.mu.pending[r.GetRequestId()]
		if !ok {
			continue // a late answer to an action that already timed out
		}
		delete(s.mu.pending, r.GetRequestId())
		ch <- Result{Outcome: r.GetOutcome(), Reason: r.GetReason()}
	}
}

// sendLoop packs every queued action into one Actions message per send,
// and sends the cluster's peers when they change.
func (s *session) sendLoop(ctx context.Context, peers func() []*xactpb.Peer) error {
	const maxBatch = 512
	for {
		var first *xactpb.BranchAction
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.peersDirty:
			msg := &xactpb.TCMessage{Body: &xactpb.TCMessage_Peers{Peers: &xactpb.Peers{Peers: peers()}}}
			if err := s.stream.Send(msg); err != nil {
				return fmt.Errorf("hub: send peers to %s: %w", s.clientID, err)
			}
			continue
		case first = <-s.outbox:
		}
		batch := []*xactpb.BranchAction{first}
	drain:
		for len(batch) < maxBatch {
			select {
			case a := <-s.outbox:
				batch = append(batch, a)
			default:
				break drain
			}
		}
		msg := &xactpb.TCMessage{Body: &xactpb.TCMessage_Actions{Actions: &xactpb.Actions{Actions: batch}}}
		if err := s.stream.Send(msg); err != nil {
			return fmt.Errorf("hub: send to %s: %w", s.clientID, err)
		}
	}
}

func (h *Hub) pick(r Route) *session {
	h.mu.Lock()
	defer h.mu.Unlock()
	ss := h.mu.byRoute[r]
	if len(ss) == 0 {
		return nil
	}
	i := h.mu.next[r] % len(ss)
	h.mu.next[r] = i + 1
	return ss[i]
}

// Do delivers one action to a session serving its resource and waits for
// the answer until ctx is done. Every way of not getting an answer is
// OUTCOME_UNKNOWN with a reason.
func (h *Hub) Do(ctx context.Context, a *xactpb.BranchAction) Result {
	s := h.pick(Route{a.GetResourceId(), a.GetBranchType()})
	if s == nil {
		return Result{Outcome: xactpb.Outcome_OUTCOME_UNKNOWN, Reason: fmt.Sprintf("no rm attached for resource %q (%s)", a.GetResourceId(), a.GetBranchType())}
	}
	id := h.seq.Add(1)
	a.RequestId = id
	ch := make(chan Result, 1)
	s.mu.Lock()
	if s.mu.ended {
		s.mu.Unlock()
		return Result{Outcome: xactpb.Outcome_OUTCOME_UNKNOWN, Reason: "rm detached"}
	}
	s.mu.pending[id] = ch
	s.mu.Unlock()

	select {
	case s.outbox <- a:
	case <-s.done:
	case <-ctx.Done():
		s.forget(id)
		return Result{Outcome: xactpb.Outcome_OUTCOME_UNKNOWN, Reason: "no answer: " + ctx.Err().Error()}
	}
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		s.forget(id)
		return Result{Outcome: xactpb.Outcome_OUTCOME_UNKNOWN, Reason: "no answer: " + ctx.Err().Error()}
	}
}

func (s *session) forget(id uint64) {
	s.mu.Lock()
	delete(s.mu.pending, id)
	s.mu.Unlock()
}

// SetPeers records the live coordinators of the cluster (each with the
// address it advertises) and, if they changed, sends the new list on every
// attached stream, so that RMs attach to a node that joined and let go of
// one that left.
func (h *Hub) SetPeers(peers []*xactpb.Peer) {
	peers = slices.Clone(peers)
	slices.SortFunc(peers, func(a, b *xactpb.Peer) int { return strings.Compare(a.GetNodeId(), b.GetNodeId()) })
	h.mu.Lock()
	defer h.mu.Unlock()
	if slices.EqualFunc(peers, h.mu.peers, func(a, b *xactpb.Peer) bool {
		return a.GetNodeId() == b.GetNodeId() && a.GetAddr() == b.GetAddr()
	}) {
		return
	}
	h.mu.peers = peers
	for s := range h.mu.sessions {
		select {
		case s.peersDirty <- struct{}{}:
		default: // already signalled; the sender reads the newest list
		}
	}
}

// peers returns the cluster's live coordinators (nil alone).
func (h *Hub) peers() []*xactpb.Peer {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mu.peers
}

// Close refuses new sessions. Sessions end when their streams do (the
// gRPC server stops them).
func (h *Hub) Close() {
	h.mu.Lock()
	h.mu.closed = true
	h.mu.Unlock()
}

func without(ss []*session, s *session) []*session {
	out := ss[:0:0]
	for _, x := range ss {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

func contains(ss []*session, s *session) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
