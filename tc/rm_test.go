package tc_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"google.golang.org/grpc"

	"github.com/xact-io/xact/protocol/xactpb"
)

// testRM is a minimal RM speaking the raw protocol, so that the TC is
// tested without the rm package.
type testRM struct {
	t      testing.TB
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	answer  func(a *xactpb.BranchAction) (xactpb.Outcome, string)
	calls   []*xactpb.BranchAction
	effects map[string]int // "kind/xid/branch" -> times answered DONE
}

func attachRM(t testing.TB, conn grpc.ClientConnInterface, resources ...string) *testRM {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &testRM{t: t, cancel: cancel, done: make(chan struct{}), effects: map[string]int{}}
	r.answer = func(*xactpb.BranchAction) (xactpb.Outcome, string) { return xactpb.Outcome_OUTCOME_DONE, "" }
	stream, err := xactpb.NewCoordinatorClient(conn).Attach(ctx)
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if err := stream.Send(&xactpb.RMMessage{Body: &xactpb.RMMessage_Hello{Hello: &xactpb.Hello{ClientId: "test-rm", ResourceIds: resources}}}); err != nil {
		t.Fatalf("send hello: %v", err)
	}
	msg, err := stream.Recv()
	if err != nil || msg.GetWelcome() == nil {
		t.Fatalf("welcome = %v, %v", msg, err)
	}
	go func() {
		defer close(r.done)
		for {
			msg, err := stream.Recv()
			if err != nil {
				return
			}
			var res []*xactpb.BranchResult
			for _, a := range msg.GetActions().GetActions() {
				r.mu.Lock()
				r.calls = append(r.calls, a)
				answer := r.answer
				r.mu.Unlock()
				out, reason := answer(a)
				r.mu.Lock()
				if out == xactpb.Outcome_OUTCOME_DONE {
					r.effects[a.GetKind().String()+"/"+a.GetXid()+"/"+itoa(a.GetBranchId())]++
				}
				r.mu.Unlock()
				res = append(res, &xactpb.BranchResult{RequestId: a.GetRequestId(), Xid: a.GetXid(), BranchId: a.GetBranchId(), Outcome: out, Reason: reason})
			}
			if err := stream.Send(&xactpb.RMMessage{Body: &xactpb.RMMessage_Results{Results: &xactpb.Results{Results: res}}}); err != nil {
				return
			}
		}
	}()
	t.Cleanup(r.close)
	return r
}

func (r *testRM) close() {
	r.cancel()
	<-r.done
}

func (r *testRM) setAnswer(f func(a *xactpb.BranchAction) (xactpb.Outcome, string)) {
	r.mu.Lock()
	r.answer = f
	r.mu.Unlock()
}

func (r *testRM) actions() []*xactpb.BranchAction {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*xactpb.BranchAction(nil), r.calls...)
}

func (r *testRM) effectCounts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.effects {
		out[k] = v
	}
	return out
}

func itoa(n int64) string {
	return strconv.FormatInt(n, 10)
}
