package rm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/xact-io/xact/internal/backoff"
	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
)

// stableStream is how long a stream must have been up for its end to be
// answered by re-attaching at once; a stream that ends sooner counts as a
// failed attempt, so a TC that keeps ending streams right after welcoming
// them is met with growing waits instead of a busy loop.
const stableStream = time.Second

// attachLoop keeps an Attach stream open until root is cancelled. welcomed
// is closed after the first Welcome; the first attempt that the TC refuses
// for its credentials is sent on refused (buffered), so that Start says so
// at once instead of waiting out its context.
//
// A stream that ends after it was up is replaced at once. While the TC is
// down, the new Attach waits (WaitForReady) for the connection, whose own
// reconnect backoff decides how soon the TC is found again (see
// protocol.DialOptions); attempts that fail with an answer (the TC shutting
// down, refusing the token) wait with capped exponential backoff and
// jitter.
//
// welcomed and refused are nil for the loop of a cluster's coordinator
// (peers.go): only the seed's loop answers Start.
func (c *Client) attachLoop(root context.Context, l *link, welcomed chan struct{}, refused chan<- error) {
	var once sync.Once
	onWelcome := func() {
		if welcomed != nil {
			once.Do(func() { close(welcomed) })
		}
	}
	for failures := 0; ; {
		up, err := c.session(root, l, onWelcome)
		if root.Err() != nil {
			return
		}
		if up == 0 && l == c.seed {
			c.mu.Lock()
			c.mu.lastErr = err
			c.mu.Unlock()
			if errors.Is(err, protocol.ErrUnauthenticated) {
				select {
				case refused <- err:
				default:
				}
			}
		}
		if up >= stableStream {
			failures = 0
		}
		var d time.Duration
		if failures > 0 {
			d = c.cfg.backoff.Delay(failures - 1)
		}
		failures++
		c.cfg.log.WarnContext(root, "rm: attach stream ended; re-attaching", "client_id", c.cfg.clientID, "node_id", l.nodeID, "wait", d, "err", err)
		if backoff.Sleep(root, d) != nil {
			return
		}
	}
}

// stream is the part of the Attach client stream the RM uses; tests fake
// it.
type stream interface {
	Send(*xactpb.RMMessage) error
	Recv() (*xactpb.TCMessage, error)
}

// session runs one Attach stream: Hello, Welcome, then actions in and
// results out until the stream fails or root is cancelled. It reports how
// long the stream was up after the TC welcomed the RM (0 if it did not).
func (c *Client) session(root context.Context, l *link, onWelcome func()) (time.Duration, error) {
	sctx, cancel := context.WithCancel(root)
	defer cancel()
	// A signal raised before this stream exists is covered by the Hello
	// below.
	select {
	case <-l.helloDirty:
	default:
	}
	st, err := l.client.Attach(sctx, grpc.WaitForReady(true))
	if err != nil {
		return 0, protocol.FromStatus(err)
	}
	if err := st.Send(&xactpb.RMMessage{Body: &xactpb.RMMessage_Hello{Hello: c.hello()}}); err != nil {
		// The real reason of a failed Send is reported by Recv.
		if _, rerr := st.Recv(); rerr != nil {
			err = rerr
		}
		return 0, fmt.Errorf("send hello: %w", protocol.FromStatus(err))
	}
	msg, err := st.Recv()
	if err != nil {
		return 0, fmt.Errorf("await welcome: %w", protocol.FromStatus(err))
	}
	w := msg.GetWelcome()
	if w == nil {
		return 0, errors.New("rm: TC did not answer Hello with Welcome")
	}
	since := time.Now()
	c.cfg.log.InfoContext(root, "rm: attached", "client_id", c.cfg.clientID, "node_id", w.GetNodeId())
	if l.nodeID != "" && w.GetNodeId() != l.nodeID {
		c.cfg.log.WarnContext(root, "rm: the address a coordinator advertises reached another one (check --advertise-addr)",
			"client_id", c.cfg.clientID, "addr", l.addr, "want_node_id", l.nodeID, "node_id", w.GetNodeId())
	}
	c.attached(l, w.GetNodeId())
	defer c.detached(l)
	onWelcome()
	c.follow(l, w.GetPeers())
	err = c.pump(root, sctx, cancel, st, l)
	return time.Since(since), err
}

// pump runs a welcomed stream until it fails or sctx ends: the receive loop
// (this goroutine), the dispatcher and the sender.
//
// The receive loop never waits for anything but the stream, so the end of
// the stream is seen as soon as gRPC reports it, however busy the handlers
// are. It puts the actions it reads on the stream's queue (at most
// WithMaxQueued); an action that finds the queue full is dropped without an
// answer: the TC's wait for it times out, which is an UNKNOWN outcome, and
// the TC delivers it again later. The dispatcher takes actions off the
// queue in order as workers (WithConcurrency) become free.
//
// Actions and results are tied to their stream. When it ends, the actions
// still queued are dropped, and so are the results of actions that were
// running: a new stream cannot carry the answer to a request of the old
// one, and the TC has already taken every action pending on the old stream
// as UNKNOWN. Running actions are not interrupted (they run under root), so
// the TC's next delivery finds them done or joins them (see execute).
//
// Results go out through one sender goroutine, the only caller of Send
// after the Hello (a gRPC stream allows one sender at a time). It packs
// whatever results are queued when it is free into one Results message, so
// a burst of actions is answered with few messages and a single answer is
// not delayed.
func (c *Client) pump(root, sctx context.Context, cancel context.CancelFunc, st stream, l *link) error {
	results := make(chan *xactpb.BranchResult, c.cfg.maxBatch)
	queue := make(chan *xactpb.BranchAction, c.cfg.maxQueued)
	var sendErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if sendErr = c.send(sctx, st, results, l.helloDirty); sendErr != nil {
			cancel() // unblocks Recv below
		}
	}()
	go func() {
		defer wg.Done()
		c.dispatch(root, sctx, queue, results)
	}()
	err := c.receive(sctx, st, queue, l)
	cancel()
	wg.Wait()
	// The dispatcher is gone: what it did not start dies with the stream.
	if n := len(queue); n > 0 {
		c.queued.Add(-int64(n))
		c.dropped.Add(int64(n))
		if root.Err() == nil { // not closing
			c.cfg.log.WarnContext(root, "rm: stream ended; dropping actions not started (the TC delivers them again)", "client_id", c.cfg.clientID, "actions", n)
		}
	}
	if sendErr != nil {
		return sendErr
	}
	return err
}

// send is the sender goroutine of one stream.
func (c *Client) send(sctx context.Context, st stream, results <-chan *xactpb.BranchResult, helloDirty <-chan struct{}) error {
	for {
		select {
		case <-sctx.Done():
			return nil
		case <-helloDirty:
			if err := st.Send(&xactpb.RMMessage{Body: &xactpb.RMMessage_Hello{Hello: c.hello()}}); err != nil {
				return fmt.Errorf("send hello: %w", protocol.FromStatus(err))
			}
		case r := <-results:
			batch := []*xactpb.BranchResult{r}
		drain:
			for len(batch) < c.cfg.maxBatch {
				select {
				case r := <-results:
					batch = append(batch, r)
				default:
					break drain
				}
			}
			msg := &xactpb.RMMessage{Body: &xactpb.RMMessage_Results{Results: &xactpb.Results{Results: batch}}}
			if err := st.Send(msg); err != nil {
				return fmt.Errorf("send %d results: %w", len(batch), protocol.FromStatus(err))
			}
		}
	}
}

// receive reads TC messages and queues actions until the stream fails or
// sctx ends. It blocks on nothing but Recv.
func (c *Client) receive(sctx context.Context, st stream, queue chan<- *xactpb.BranchAction, l *link) error {
	for {
		msg, err := st.Recv()
		if err != nil {
			if sctx.Err() != nil {
				return nil
			}
			return protocol.FromStatus(err)
		}
		switch b := msg.GetBody().(type) {
		case *xactpb.TCMessage_Actions:
			dropped := 0
			for _, a := range b.Actions.GetActions() {
				c.queued.Add(1)
				select {
				case queue <- a:
				default:
					c.queued.Add(-1)
					dropped++
				}
			}
			if dropped > 0 {
				c.dropped.Add(int64(dropped))
				c.cfg.log.WarnContext(sctx, "rm: phase-two queue full; dropping actions unanswered (the TC times them out and retries)",
					"client_id", c.cfg.clientID, "actions", dropped, "queued", len(queue), "running", c.running.Load())
			}
		case *xactpb.TCMessage_Welcome:
			// The answer to a repeated Hello.
		case *xactpb.TCMessage_Peers:
			c.follow(l, b.Peers.GetPeers())
		default:
			c.cfg.log.DebugContext(sctx, "rm: ignoring unknown message from TC", "type", fmt.Sprintf("%T", b))
		}
	}
}

// dispatch is the dispatcher of one stream: it starts the queued actions in
// order, each on its own goroutine, until sctx ends. It takes a worker
// first and then an action, so that an action is either in the queue
// (Queued, at most WithMaxQueued) or running. An action runs under root,
// not sctx: a stream that breaks does not interrupt phase two half way,
// and the TC's redelivery finds it done. Its result goes out on the stream
// it came from, or nowhere.
func (c *Client) dispatch(root, sctx context.Context, queue <-chan *xactpb.BranchAction, results chan<- *xactpb.BranchResult) {
	for {
		select {
		case c.sem <- struct{}{}:
		case <-sctx.Done():
			return
		}
		var a *xactpb.BranchAction
		select {
		case a = <-queue:
			c.queued.Add(-1)
		case <-sctx.Done():
		}
		if sctx.Err() != nil {
			// Both cases may have been ready; the stream's end wins.
			<-c.sem
			if a != nil {
				c.dropped.Add(1)
			}
			return
		}
		c.running.Add(1)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer func() {
				c.running.Add(-1)
				<-c.sem
			}()
			r := c.execute(root, a)
			select {
			case results <- r:
			case <-sctx.Done():
			}
		}()
	}
}

// Status is a snapshot of a Client's attachment to the TC and of its
// phase-two work, for health checks, metrics and tests.
type Status struct {
	// Attached reports whether a stream to the TC is up and welcomed, as
	// far as the Client knows: a stream whose TC vanished silently counts
	// until the connection's keepalive gives it up (see New).
	Attached bool
	// NodeID is the node id of the TC that welcomed the current stream,
	// "" while detached.
	NodeID string
	// Coordinators are the node ids of the coordinators a welcomed
	// stream is up to, sorted: NodeID's alone, or in a cluster every live
	// coordinator once the Client follows them (Dial, WithDialOptions).
	Coordinators []string
	// Attaches counts the streams the TC welcomed since Start: it grows by
	// one with every re-attach.
	Attaches int64
	// Running is the number of phase-two actions running (at most the
	// WithConcurrency value).
	Running int
	// Queued is the number of actions received and waiting for a worker
	// (at most the WithMaxQueued value).
	Queued int
	// Dropped counts the actions received since Start that were never
	// started: the queue was full, or their stream ended first. The TC
	// took them as UNKNOWN and delivers them again.
	Dropped int64
}

// Status returns the Client's current Status.
func (c *Client) Status() Status {
	c.mu.Lock()
	var node string
	if c.seed != nil {
		node = c.seed.welcomedBy
	}
	coordinators := c.coordinatorsLocked()
	c.mu.Unlock()
	return Status{
		Attached:     node != "",
		NodeID:       node,
		Coordinators: coordinators,
		Attaches:     c.attaches.Load(),
		Running:      int(c.running.Load()),
		Queued:       int(c.queued.Load()),
		Dropped:      c.dropped.Load(),
	}
}

func (c *Client) attached(l *link, nodeID string) {
	c.mu.Lock()
	l.welcomedBy = nodeID
	if l == c.seed {
		c.mu.lastErr = nil
	}
	c.mu.Unlock()
	c.attaches.Add(1)
}

func (c *Client) detached(l *link) {
	c.mu.Lock()
	l.welcomedBy = ""
	delete(c.mu.lists, l)
	c.mu.Unlock()
}
