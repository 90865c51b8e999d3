package rm

import (
	"context"
	"errors"
	"fmt"
	"github.com/xact-io/xact/internal/backoff"
	"sync"

	"google.golang.org/grpc"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
)

// attachLoop keeps an Attach stream open until root is cancelled. welcomed
// is closed after the first Welcome.
func (c *Client) attachLoop(root context.Context, welcomed chan struct{}) {
	var once sync.Once
	onWelcome := func() { once.Do(func() { close(welcomed) }) }
	for attempt := 0; ; attempt++ {
		ok, err := c.session(root, onWelcome)
		if root.Err() != nil {
			return
		}
		if ok {
			// The stream was up: the next failure starts from the
			// shortest wait again.
			attempt = 0
		}
		d := c.cfg.backoff.Delay(attempt)
		c.cfg.log.WarnContext(root, "rm: attach stream ended; re-attaching", "client_id", c.cfg.clientID, "wait", d, "err", err)
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
// results out until the stream fails or root is cancelled. It reports
// whether the TC welcomed the RM.
func (c *Client) session(root context.Context, onWelcome func()) (bool, error) {
	sctx, cancel := context.WithCancel(root)
	defer cancel()
	// A signal raised before this stream exists is covered by the Hello
	// below.
	select {
	case <-c.helloDirty:
	default:
	}
	st, err := c.client.Attach(sctx, grpc.WaitForReady(true))
	if err != nil {
		return false, protocol.FromStatus(err)
	}
	if err := st.Send(&xactpb.RMMessage{Body: &xactpb.RMMessage_Hello{Hello: c.hello()}}); err != nil {
		// The real reason of a failed Send is reported by Recv.
		if _, rerr := st.Recv(); rerr != nil {
			err = rerr
		}
		return false, fmt.Errorf("send hello: %w", protocol.FromStatus(err))
	}
	msg, err := st.Recv()
	if err != nil {
		return false, fmt.Errorf("await welcome: %w", protocol.FromStatus(err))
	}
	w := msg.GetWelcome()
	if w == nil {
		return false, errors.New("rm: TC did not answer Hello with Welcome")
	}
	c.cfg.log.InfoContext(root, "rm: attached", "client_id", c.cfg.clientID, "node_id", w.GetNodeId())
	onWelcome()
	return true, c.pump(root, sctx, cancel, st)
}

// pump runs the sender and the receive loop of a welcomed stream until one
// of them fails or sctx ends.
//
// Results go out through one sender goroutine, the only caller of Send
// after the Hello (a gRPC stream allows one sender at a time). It packs
// whatever results are queued when it is free into one Results message, so
// a burst of actions is answered with few messages and a single answer is
// not delayed. Results are tied to their stream: a result whose stream is
// gone is dropped and the TC delivers the action again.
func (c *Client) pump(root, sctx context.Context, cancel context.CancelFunc, st stream) error {
	results := make(chan *xactpb.BranchResult, c.cfg.maxBatch)
	var sendErr error
	var swg sync.WaitGroup
	swg.Add(1)
	go func() {
		defer swg.Done()
		if sendErr = c.send(sctx, st, results); sendErr != nil {
			cancel() // unblocks Recv below
		}
	}()
	err := c.receive(root, sctx, st, results)
	cancel()
	swg.Wait()
	if sendErr != nil {
		return sendErr
	}
	return err
}

// send is the sender goroutine of one stream.
func (c *Client) send(sctx context.Context, st stream, results <-chan *xactpb.BranchResult) error {
	for {
		select {
		case <-sctx.Done():
			return nil
		case <-c.helloDirty:
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

// receive reads TC messages and dispatches actions until the stream fails
// or sctx ends.
func (c *Client) receive(root, sctx context.Context, st stream, results chan<- *xactpb.BranchResult) error {
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
			for _, a := range b.Actions.GetActions() {
				if err := c.dispatch(root, sctx, a, results); err != nil {
					return nil // sctx ended
				}
			}
		case *xactpb.TCMessage_Welcome:
			// The answer to a repeated Hello.
		default:
			c.cfg.log.DebugContext(sctx, "rm: ignoring unknown message from TC", "type", fmt.Sprintf("%T", b))
		}
	}
}

// dispatch runs one action on the worker pool, waiting for a free worker
// (which stops the receive loop: backpressure on the TC). The action runs
// under root, not sctx: a stream that breaks does not interrupt phase two
// half way, and the TC's redelivery finds it done.
func (c *Client) dispatch(root, sctx context.Context, a *xactpb.BranchAction, results chan<- *xactpb.BranchResult) error {
	select {
	case c.sem <- struct{}{}:
	case <-sctx.Done():
		return sctx.Err()
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer func() { <-c.sem }()
		r := c.execute(root, a)
		select {
		case results <- r:
		case <-sctx.Done():
		}
	}()
	return nil
}
