// Package hub keeps the RMs attached to the coordinator and delivers
// phase-two actions to them.
//
// An RM opens one Attach stream, declares the resources it serves in a
// Hello, and from then on receives Actions and answers with Results. The hub
// routes an action to any attached session serving the action's resource
// (round robin), packs whatever is queued for one session into a single
// Actions message, and matches answers to waiting callers by request id. An
// action that finds no session, loses its session, or gets no answer within
// its context's deadline has an UNKNOWN outcome: the caller retries later.
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	nodeID string
	log    *slog.Logger
	seq    atomic.Uint64

	mu struct {
		sync.Mutex
		sessions   map[*session]struct{}
		byResource map[string][]*session
		next       map[string]int // round-robin cursor per resource
		closed     bool
	}
}

// New returns an empty hub.
func New(nodeID string, log *slog.Logger) *Hub {
	h := &Hub{nodeID: nodeID, log: log}
	h.mu.sessions = map[*session]struct{}{}
	h.mu.byResource = map[string][]*session{}
	h.mu.next = map[string]int{}
	return h
}

type session struct {
	clientID string
	stream   Stream
	outbox   chan *xactpb.BranchAction
	done     chan struct{} // closed when the session ends

	mu struct {
		sync.Mutex
		pending   map[uint64]chan Result
		resources []string
		ended     bool
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
		clientID: hello.GetClientId(),
		stream:   stream,
		outbox:   make(chan *xactpb.BranchAction, 4096),
		done:     make(chan struct{}),
	}
	s.mu.pending = map[uint64]chan Result{}
	// Index the session before the Welcome: once welcomed, an RM may expect
	// its phase-two work to be routed to it.
	if err := h.add(s, hello.GetResourceIds()); err != nil {
		return err
	}
	if err := stream.Send(&xactpb.TCMessage{Body: &xactpb.TCMessage_Welcome{Welcome: &xactpb.Welcome{NodeId: h.nodeID}}}); err != nil {
		h.remove(s)
		return err
	}
	h.log.Info("rm attached", "client", s.clientID, "resources", hello.GetResourceIds())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sendErr := make(chan error, 1)
	go func() { sendErr <- s.sendLoop(ctx) }()

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
				h.redeclare(s, b.Hello.GetResourceIds())
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

func (h *Hub) add(s *session, resources []string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mu.closed {
		return errors.New("hub: closed")
	}
	h.mu.sessions[s] = struct{}{}
	h.indexLocked(s, resources)
	return nil
}

func (h *Hub) indexLocked(s *session, resources []string) {
	s.mu.Lock()
	old := s.mu.resources
	s.mu.resources = append([]string(nil), resources...)
	s.mu.Unlock()
	for _, r := range old {
		h.mu.byResource[r] = without(h.mu.byResource[r], s)
	}
	for _, r := range resources {
		if !contains(h.mu.byResource[r], s) {
			h.mu.byResource[r] = append(h.mu.byResource[r], s)
		}
	}
}

func (h *Hub) redeclare(s *session, resources []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.mu.sessions[s]; ok {
		h.indexLocked(s, resources)
	}
}

func (h *Hub) remove(s *session) {
	h.mu.Lock()
	delete(h.mu.sessions, s)
	s.mu.Lock()
	for _, r := range s.mu.resources {
		h.mu.byResource[r] = without(h.mu.byResource[r], s)
		if len(h.mu.byResource[r]) == 0 {
			delete(h.mu.byResource, r)
		}
	}
	s.mu.Unlock()
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

// sendLoop packs every queued action into one Actions message per send.
func (s *session) sendLoop(ctx context.Context) error {
	const maxBatch = 512
	for {
		var first *xactpb.BranchAction
		select {
		case <-ctx.Done():
			return ctx.Err()
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

// Attached reports whether some session serves resource.
func (h *Hub) Attached(resource string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.mu.byResource[resource]) > 0
}

// Clients lists the attached sessions' client ids.
func (h *Hub) Clients() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for s := range h.mu.sessions {
		out = append(out, s.clientID)
	}
	return out
}

func (h *Hub) pick(resource string) *session {
	h.mu.Lock()
	defer h.mu.Unlock()
	ss := h.mu.byResource[resource]
	if len(ss) == 0 {
		return nil
	}
	i := h.mu.next[resource] % len(ss)
	h.mu.next[resource] = i + 1
	return ss[i]
}

// Do delivers one action to a session serving its resource and waits for
// the answer until ctx is done. Every way of not getting an answer is
// OUTCOME_UNKNOWN with a reason.
func (h *Hub) Do(ctx context.Context, a *xactpb.BranchAction) Result {
	s := h.pick(a.GetResourceId())
	if s == nil {
		return Result{Outcome: xactpb.Outcome_OUTCOME_UNKNOWN, Reason: fmt.Sprintf("no rm attached for resource %q", a.GetResourceId())}
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
