package rm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/tm"
)

const (
	at      = xactpb.BranchType_BRANCH_TYPE_AT
	tcc     = xactpb.BranchType_BRANCH_TYPE_TCC
	commit  = xactpb.ActionKind_ACTION_KIND_COMMIT
	rback   = xactpb.ActionKind_ACTION_KIND_ROLLBACK
	done    = xactpb.Outcome_OUTCOME_DONE
	failed  = xactpb.Outcome_OUTCOME_FAILED
	unknown = xactpb.Outcome_OUTCOME_UNKNOWN
)

// funcHandler adapts a function to Handler.
type funcHandler func(ctx context.Context, kind string, a Action) error

func (f funcHandler) Commit(ctx context.Context, a Action) error   { return f(ctx, "commit", a) }
func (f funcHandler) Rollback(ctx context.Context, a Action) error { return f(ctx, "rollback", a) }

func fastOpts(extra ...Option) []Option {
	return append([]Option{WithBackoff(time.Millisecond, 10*time.Millisecond), WithRetryBudget(300 * time.Millisecond), WithClientID("test-rm")}, extra...)
}

// started returns a started Client on f; it is closed at cleanup.
func started(t *testing.T, f *fakeTC, serve2 func(c *Client), opts ...Option) *Client {
	t.Helper()
	c := New(serve(t, f), fastOpts(opts...)...)
	if serve2 != nil {
		serve2(c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("Start() = %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recvResult(t *testing.T, f *fakeTC) *xactpb.BranchResult {
	t.Helper()
	select {
	case r := <-f.results:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no result within 5s")
		return nil
	}
}

func recvHello(t *testing.T, f *fakeTC) *xactpb.Hello {
	t.Helper()
	select {
	case h := <-f.hellos:
		return h
	case <-time.After(5 * time.Second):
		t.Fatal("no hello within 5s")
		return nil
	}
}

func TestOutcomeOf(t *testing.T) {
	base := errors.New("boom")
	long := strings.Repeat("é", MaxReasonLen) // 2 bytes each
	tests := []struct {
		name   string
		err    error
		want   xactpb.Outcome
		reason string // prefix; "" checks for empty
	}{
		{"nil", nil, done, ""},
		{"plain", base, unknown, "boom"},
		{"permanent", Permanent(base), failed, "boom"},
		{"wrapped permanent", fmt.Errorf("undo: %w", Permanent(base)), failed, "undo: boom"},
		{"deadline", context.DeadlineExceeded, unknown, "context deadline exceeded"},
		{"invalid utf-8", errors.New("bad \xff byte"), unknown, "bad \uFFFD byte"},
		{"long", errors.New(long), unknown, "éé"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := outcomeOf(tt.err)
			if got != tt.want {
				t.Errorf("outcomeOf(%v) = %v, want %v", tt.err, got, tt.want)
			}
			if !strings.HasPrefix(reason, tt.reason) || (tt.reason == "" && reason != "") {
				t.Errorf("outcomeOf(%v) reason = %q, want prefix %q", tt.err, reason, tt.reason)
			}
			if len(reason) > MaxReasonLen || !utf8.ValidString(reason) {
				t.Errorf("reason of %d bytes, valid UTF-8 %v; want <= %d and valid", len(reason), utf8.ValidString(reason), MaxReasonLen)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	conn := serve(t, newFakeTC())
	tests := []struct {
		name string
		nil_ bool
		opts []Option
		ok   bool
	}{
		{"defaults", false, nil, true},
		{"all valid", false, []Option{WithLogger(slog.New(slog.DiscardHandler)), WithClientID("x"), WithBackoff(time.Millisecond, time.Second),
			WithConcurrency(1), WithRPCTimeout(time.Second), WithActionTimeout(time.Second), WithRetryBudget(time.Second), WithMaxBatch(1), WithMaxQueued(1), nil}, true},
		{"nil conn", true, nil, false},
		{"nil logger", false, []Option{WithLogger(nil)}, false},
		{"empty client id", false, []Option{WithClientID("")}, false},
		{"bad backoff", false, []Option{WithBackoff(time.Second, time.Millisecond)}, false},
		{"zero concurrency", false, []Option{WithConcurrency(0)}, false},
		{"zero rpc timeout", false, []Option{WithRPCTimeout(0)}, false},
		{"negative action timeout", false, []Option{WithActionTimeout(-1)}, false},
		{"zero retry budget", false, []Option{WithRetryBudget(0)}, false},
		{"zero batch", false, []Option{WithMaxBatch(0)}, false},
		{"zero queue", false, []Option{WithMaxQueued(0)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c *Client
			if tt.nil_ {
				c = New(nil, tt.opts...)
			} else {
				c = New(conn, tt.opts...)
			}
			defer c.Close()
			if got := c.Err() == nil; got != tt.ok {
				t.Fatalf("New().Err() = %v, want ok=%v", c.Err(), tt.ok)
			}
			if tt.ok {
				return
			}
			ctx := context.Background()
			h := funcHandler(func(context.Context, string, Action) error { return nil })
			for name, err := range map[string]error{
				"Serve":          c.Serve("db", at, h),
				"Start":          c.Start(ctx),
				"ReportBranch":   c.ReportBranch(ctx, "x:1", 1, xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_DONE, nil),
				"QueryLocks":     c.QueryLocks(ctx, "x:1", "db", []string{"k"}),
				"RegisterBranch": func() error { _, err := c.RegisterBranch(ctx, "x:1", "db", at, nil, nil); return err }(),
			} {
				if !errors.Is(err, ErrInvalidOption) {
					t.Errorf("%s() = %v, want ErrInvalidOption", name, err)
				}
			}
		})
	}
}

func TestServeValidation(t *testing.T) {
	c := New(serve(t, newFakeTC()))
	h := funcHandler(func(context.Context, string, Action) error { return nil })
	tests := []struct {
		name     string
		resource string
		typ      xactpb.BranchType
		h        Handler
		want     error
	}{
		{"ok", "db", at, h, nil},
		{"again replaces", "db", at, h, nil},
		{"empty resource", "", at, h, ErrInvalidArgument},
		{"nil handler", "db", at, nil, ErrInvalidArgument},
		{"unknown type", "db", xactpb.BranchType(99), h, ErrInvalidArgument},
	}
	for _, tt := range tests {
		if err := c.Serve(tt.resource, tt.typ, tt.h); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("%s: Serve() = %v, want %v", tt.name, err, tt.want)
		}
	}
	c.Close()
	if err := c.Serve("db2", at, h); !errors.Is(err, ErrClosed) {
		t.Errorf("Serve() after Close = %v, want ErrClosed", err)
	}
	if err := c.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start() after Close = %v, want ErrClosed", err)
	}
}

// fakeStream records what the sender sends.
type fakeStream struct {
	mu   sync.Mutex
	sent []*xactpb.RMMessage
	n    chan struct{}
}

func (s *fakeStream) Send(m *xactpb.RMMessage) error {
	s.mu.Lock()
	s.sent = append(s.sent, m)
	s.mu.Unlock()
	s.n <- struct{}{}
	return nil
}

func (s *fakeStream) Recv() (*xactpb.TCMessage, error) { select {} }

// TestSendBatches: results queued while the sender is busy leave in one
// message each, up to the batch limit.
func TestSendBatches(t *testing.T) {
	tests := []struct {
		queued, max int
		want        []int
	}{
		{1, 256, []int{1}},
		{10, 256, []int{10}},
		{10, 4, []int{4, 4, 2}},
		{8, 4, []int{4, 4}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%d", tt.queued, tt.max), func(t *testing.T) {
			c := New(nil, WithMaxBatch(tt.max)) // send needs no connection
			results := make(chan *xactpb.BranchResult, tt.queued)
			for i := range tt.queued {
				results <- &xactpb.BranchResult{RequestId: uint64(i)}
			}
			st := &fakeStream{n: make(chan struct{}, 16)}
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() { errc <- c.send(ctx, st, results, nil) }()
			for range tt.want {
				<-st.n
			}
			cancel()
			if err := <-errc; err != nil {
				t.Fatalf("send() = %v", err)
			}
			var got []int
			var ids []uint64
			for _, m := range st.sent {
				got = append(got, len(m.GetResults().GetResults()))
				for _, r := range m.GetResults().GetResults() {
					ids = append(ids, r.GetRequestId())
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("batch sizes = %v, want %v", got, tt.want)
			}
			for i, id := range ids {
				if id != uint64(i) {
					t.Fatalf("request ids = %v, want in order", ids)
				}
			}
		})
	}
}

func TestDispatchOutcomes(t *testing.T) {
	f := newFakeTC()
	var saw sync.Map // request id -> problem with the handler's ctx, or ""
	h := funcHandler(func(ctx context.Context, kind string, a Action) error {
		var problems []string
		if _, ok := ctx.Deadline(); !ok {
			problems = append(problems, "no deadline")
		}
		if _, ok := tm.XID(ctx); ok {
			problems = append(problems, "XID in ctx")
		}
		if Logger(ctx) == nil {
			problems = append(problems, "no logger")
		}
		saw.Store(a.XID, strings.Join(problems, ", "))
		switch string(a.AppData) {
		case "ok":
			return nil
		case "permanent":
			return Permanent(errors.New("dirty row"))
		case "panic":
			panic("handler bug")
		default:
			return errors.New("db down")
		}
	})
	started(t, f, func(c *Client) {
		c.Serve("db", at, h)
		c.Serve("tcc-svc", tcc, h)
	}, WithActionTimeout(time.Second))
	if got := recvHello(t, f); !slices.Equal(got.GetResourceIds(), []string{"db", "tcc-svc"}) || got.GetClientId() != "test-rm" ||
		!slices.Equal(got.GetBranchTypes(), []xactpb.BranchType{at, tcc}) {
		t.Fatalf("hello = %v", got)
	}

	tests := []struct {
		name     string
		kind     xactpb.ActionKind
		resource string
		typ      xactpb.BranchType
		data     string
		want     xactpb.Outcome
		reason   string
	}{
		{"commit done", commit, "db", at, "ok", done, ""},
		{"rollback done", rback, "db", at, "ok", done, ""},
		{"tcc done", commit, "tcc-svc", tcc, "ok", done, ""},
		{"permanent", rback, "db", at, "permanent", failed, "dirty row"},
		{"retryable", commit, "db", at, "err", unknown, "db down"},
		{"panic", rback, "db", at, "panic", unknown, "rm: handler panicked: handler bug"},
		{"no handler for resource", commit, "other", at, "ok", unknown, `rm: no handler for resource "other"`},
		{"no handler for type", commit, "db", tcc, "ok", unknown, `rm: no handler for resource "db"`},
		{"unknown kind", xactpb.ActionKind_ACTION_KIND_UNSPECIFIED, "db", at, "ok", unknown, "rm: unknown action kind"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			xid := fmt.Sprintf("x:%d", i)
			f.actions <- []*xactpb.BranchAction{{RequestId: uint64(100 + i), Kind: tt.kind, Xid: xid, BranchId: 7, ResourceId: tt.resource, BranchType: tt.typ, ApplicationData: []byte(tt.data)}}
			r := recvResult(t, f)
			if r.GetRequestId() != uint64(100+i) || r.GetXid() != xid || r.GetBranchId() != 7 {
				t.Errorf("result ids = %d %s %d, want %d %s 7", r.GetRequestId(), r.GetXid(), r.GetBranchId(), 100+i, xid)
			}
			if r.GetOutcome() != tt.want || !strings.HasPrefix(r.GetReason(), tt.reason) {
				t.Errorf("result = %v %q, want %v %q", r.GetOutcome(), r.GetReason(), tt.want, tt.reason)
			}
			if p, ok := saw.Load(xid); ok && p != "" {
				t.Errorf("handler ctx: %s", p)
			}
		})
	}
}

// TestBatchedResults: a burst of actions is answered with fewer Results
// messages than actions.
func TestBatchedResults(t *testing.T) {
	f := newFakeTC()
	release := make(chan struct{})
	const n = 50
	var blocked sync.WaitGroup
	blocked.Add(n)
	h := funcHandler(func(ctx context.Context, _ string, a Action) error {
		blocked.Done()
		<-release
		return nil
	})
	started(t, f, func(c *Client) { c.Serve("db", at, h) }, WithConcurrency(64))
	var batch []*xactpb.BranchAction
	for i := range n {
		batch = append(batch, &xactpb.BranchAction{RequestId: uint64(i), Kind: commit, Xid: "x:1", BranchId: int64(i), ResourceId: "db"})
	}
	f.actions <- batch
	blocked.Wait() // every handler is running: their results end together
	close(release)
	for range n {
		recvResult(t, f)
	}
	msgs := 0
	for total := 0; total < n; msgs++ {
		total += <-f.resultMsgs
	}
	if msgs >= n {
		t.Errorf("%d results came in %d messages, want fewer", n, msgs)
	}
	t.Logf("%d results in %d messages", n, msgs)
}

func TestConcurrencyBound(t *testing.T) {
	f := newFakeTC()
	var running, peak atomic.Int32
	h := funcHandler(func(ctx context.Context, _ string, a Action) error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		running.Add(-1)
		return nil
	})
	started(t, f, func(c *Client) { c.Serve("db", at, h) }, WithConcurrency(3))
	var batch []*xactpb.BranchAction
	for i := range 12 {
		batch = append(batch, &xactpb.BranchAction{RequestId: uint64(i), Kind: commit, Xid: "x:1", BranchId: int64(i), ResourceId: "db"})
	}
	f.actions <- batch
	for range 12 {
		if r := recvResult(t, f); r.GetOutcome() != done {
			t.Fatalf("result %v", r)
		}
	}
	if p := peak.Load(); p != 3 {
		t.Errorf("peak concurrency = %d, want 3", p)
	}
}

// TestDuplicateInFlight: the same action delivered again while it runs is
// not run concurrently with itself; both deliveries are answered.
func TestDuplicateInFlight(t *testing.T) {
	f := newFakeTC()
	var calls atomic.Int32
	release := make(chan struct{})
	h := funcHandler(func(ctx context.Context, _ string, a Action) error {
		calls.Add(1)
		<-release
		return nil
	})
	started(t, f, func(c *Client) { c.Serve("db", at, h) })
	a := func(id uint64) *xactpb.BranchAction {
		return &xactpb.BranchAction{RequestId: id, Kind: rback, Xid: "x:1", BranchId: 1, ResourceId: "db"}
	}
	f.actions <- []*xactpb.BranchAction{a(1)}
	f.actions <- []*xactpb.BranchAction{a(2)}
	time.Sleep(50 * time.Millisecond)
	close(release)
	ids := []uint64{recvResult(t, f).GetRequestId(), recvResult(t, f).GetRequestId()}
	slices.Sort(ids)
	if !slices.Equal(ids, []uint64{1, 2}) {
		t.Errorf("answered request ids %v, want [1 2]", ids)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handler calls = %d, want 1", n)
	}
}

// TestServeAfterStart: a resource declared on a live stream goes out in a
// new Hello on the same stream.
func TestServeAfterStart(t *testing.T) {
	f := newFakeTC()
	h := funcHandler(func(context.Context, string, Action) error { return nil })
	c := started(t, f, func(c *Client) { c.Serve("db1", at, h) })
	recvHello(t, f)
	if err := c.Serve("db2", tcc, h); err != nil {
		t.Fatal(err)
	}
	got := recvHello(t, f)
	if !slices.Equal(got.GetResourceIds(), []string{"db1", "db2"}) {
		t.Errorf("second hello resources = %v, want [db1 db2]", got.GetResourceIds())
	}
	if n := f.Calls("attach"); n != 1 {
		t.Errorf("attach streams = %d, want 1", n)
	}
	f.actions <- []*xactpb.BranchAction{{RequestId: 1, Kind: commit, Xid: "x:1", BranchId: 1, ResourceId: "db2", BranchType: tcc}}
	if r := recvResult(t, f); r.GetOutcome() != done {
		t.Errorf("result = %v", r)
	}
}

func TestReattach(t *testing.T) {
	f := newFakeTC()
	h := funcHandler(func(context.Context, string, Action) error { return nil })
	started(t, f, func(c *Client) { c.Serve("db", at, h) })
	recvHello(t, f)
	for i := range 3 {
		f.kick <- struct{}{}
		if got := recvHello(t, f); !slices.Equal(got.GetResourceIds(), []string{"db"}) {
			t.Fatalf("hello after re-attach = %v", got)
		}
		f.actions <- []*xactpb.BranchAction{{RequestId: uint64(i), Kind: commit, Xid: "x:1", BranchId: int64(i), ResourceId: "db"}}
		if r := recvResult(t, f); r.GetOutcome() != done || r.GetRequestId() != uint64(i) {
			t.Fatalf("result after re-attach = %v", r)
		}
	}
	if n := f.Calls("attach"); n != 4 {
		t.Errorf("attach streams = %d, want 4", n)
	}
}

// waitStatus polls c.Status until cond holds or d passes, and returns the
// last Status.
func waitStatus(t *testing.T, c *Client, d time.Duration, what string, cond func(Status) bool) Status {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		st := c.Status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v: status %+v", what, d, st)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestReattachWhileWorkersBusy: with every worker in a slow handler and
// more actions than the queue holds, the RM still reads its stream: it
// queues what fits, drops the rest unanswered, notices at once that the
// stream ended and re-attaches; the actions that had not started die with
// their stream (the TC has taken them as UNKNOWN) and the running one's
// result is not sent on the new stream.
func TestReattachWhileWorkersBusy(t *testing.T) {
	f := newFakeTC()
	release := make(chan struct{})
	var mu sync.Mutex
	ran := map[int64]int{} // branch id -> handler calls
	h := funcHandler(func(ctx context.Context, _ string, a Action) error {
		mu.Lock()
		ran[a.BranchID]++
		mu.Unlock()
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	c := started(t, f, func(c *Client) { c.Serve("db", at, h) }, WithConcurrency(1), WithMaxQueued(2))
	recvHello(t, f)
	action := func(id int64) *xactpb.BranchAction {
		return &xactpb.BranchAction{RequestId: uint64(id), Kind: commit, Xid: "x:1", BranchId: id, ResourceId: "db"}
	}
	f.actions <- []*xactpb.BranchAction{action(1), action(2)}
	// The receive loop is free while action 1 runs and 2 waits: it takes
	// two more batches, queues 3 and drops 4.
	f.actions <- []*xactpb.BranchAction{action(3)}
	f.actions <- []*xactpb.BranchAction{action(4)}
	waitStatus(t, c, 5*time.Second, "busy worker and full queue", func(st Status) bool {
		return st.Running == 1 && st.Queued == 2 && st.Dropped == 1
	})

	f.kick <- struct{}{}
	if got := recvHello(t, f); !slices.Equal(got.GetResourceIds(), []string{"db"}) {
		t.Fatalf("hello after re-attach = %v", got)
	}
	st := waitStatus(t, c, 5*time.Second, "re-attach", func(st Status) bool { return st.Attached && st.Attaches == 2 })
	if st.Running != 1 || st.Queued != 0 || st.Dropped != 3 || st.NodeID != "fake" {
		t.Errorf("status after re-attach = %+v, want 1 running, 0 queued, 3 dropped, node fake", st)
	}

	f.actions <- []*xactpb.BranchAction{action(5)}
	close(release)
	if r := recvResult(t, f); r.GetRequestId() != 5 || r.GetOutcome() != done {
		t.Errorf("first result on the new stream = %v, want request 5 done", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := map[int64]int{1: 1, 5: 1}; !maps.Equal(ran, want) {
		t.Errorf("handler calls by branch = %v, want %v (2, 3 and 4 dropped)", ran, want)
	}
	select {
	case r := <-f.results:
		t.Errorf("unexpected result %v: the old stream's results must not reach the new one", r)
	default:
	}
}

// TestCloseCancelsHandlers: Close cancels a running handler's context and
// waits for it (goleak checks nothing is left).
func TestCloseCancelsHandlers(t *testing.T) {
	f := newFakeTC()
	running := make(chan struct{})
	var sawCancel atomic.Bool
	h := funcHandler(func(ctx context.Context, _ string, a Action) error {
		close(running)
		<-ctx.Done()
		sawCancel.Store(true)
		return ctx.Err()
	})
	c := started(t, f, func(c *Client) { c.Serve("db", at, h) })
	f.actions <- []*xactpb.BranchAction{{RequestId: 1, Kind: commit, Xid: "x:1", BranchId: 1, ResourceId: "db"}}
	<-running
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if !sawCancel.Load() {
		t.Error("Close returned before the handler saw its context cancelled")
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
}

func TestStart(t *testing.T) {
	f := newFakeTC()
	c := started(t, f, nil)
	if err := c.Start(context.Background()); !errors.Is(err, ErrStarted) {
		t.Errorf("second Start() = %v, want ErrStarted", err)
	}

	// An unreachable TC: Start gives up with its ctx, and the loop keeps
	// trying until Close.
	conn := serve(t, newFakeTC())
	conn.Close()
	c2 := New(conn, fastOpts()...)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c2.Start(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Start(unreachable TC) = %v, want DeadlineExceeded", err)
	}
	if err := c2.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
}

// TestRegisterBeforeStart: registering a branch before Start is refused
// without an RPC: the TC could never deliver its phase two.
func TestRegisterBeforeStart(t *testing.T) {
	f := newFakeTC()
	c := New(serve(t, f), fastOpts()...)
	defer c.Close()
	if _, err := c.RegisterBranch(context.Background(), "x:1", "db", at, []string{"t:1"}, nil); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("RegisterBranch before Start = %v, want ErrNotStarted", err)
	}
	if n := f.Calls("register"); n != 0 {
		t.Errorf("RegisterBranch RPCs = %d, want 0", n)
	}
}

func TestPhaseOne(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "down")
	f := newFakeTC()
	c := started(t, f, nil)
	ctx := context.Background()

	t.Run("register not retried", func(t *testing.T) {
		f.register = func(int) (int64, error) { return 0, unavailable }
		if _, err := c.RegisterBranch(ctx, "x:1", "db", at, []string{"t:1"}, nil); status.Code(err) != codes.Unavailable {
			t.Errorf("RegisterBranch() = %v, want Unavailable", err)
		}
		if n := f.Calls("register"); n != 1 {
			t.Errorf("RegisterBranch RPCs = %d, want 1", n)
		}
	})
	t.Run("register ok", func(t *testing.T) {
		f.register = func(int) (int64, error) { return 3, nil }
		if id, err := c.RegisterBranch(ctx, "x:1", "db", at, []string{"t:1"}, nil); err != nil || id != 3 {
			t.Errorf("RegisterBranch() = %d, %v, want 3, nil", id, err)
		}
	})
	t.Run("register conflict", func(t *testing.T) {
		f.register = func(int) (int64, error) {
			return 0, protocol.ToStatus(&protocol.LockConflictError{Resource: "db", Key: "t:1", Holder: "x:0"})
		}
		_, err := c.RegisterBranch(ctx, "x:1", "db", at, []string{"t:1"}, nil)
		var lc *protocol.LockConflictError
		if !errors.As(err, &lc) || lc.Holder != "x:0" || !errors.Is(err, protocol.ErrLockConflict) {
			t.Errorf("RegisterBranch() = %v, want a LockConflictError held by x:0", err)
		}
	})
	t.Run("register not begin", func(t *testing.T) {
		f.register = func(int) (int64, error) { return 0, protocol.ToStatus(protocol.ErrTimedOut) }
		if _, err := c.RegisterBranch(ctx, "x:1", "db", at, nil, nil); !errors.Is(err, protocol.ErrTimedOut) {
			t.Errorf("RegisterBranch() = %v, want protocol.ErrTimedOut", err)
		}
	})
	t.Run("register bad args", func(t *testing.T) {
		if _, err := c.RegisterBranch(ctx, "", "db", at, nil, nil); !errors.Is(err, tm.ErrInvalidXID) {
			t.Errorf("RegisterBranch(empty xid) = %v, want tm.ErrInvalidXID", err)
		}
		if _, err := c.RegisterBranch(ctx, "x:1", "", at, nil, nil); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("RegisterBranch(empty resource) = %v, want ErrInvalidArgument", err)
		}
	})
	t.Run("report retried", func(t *testing.T) {
		f.report = func(n int) error {
			if n < 3 {
				return unavailable
			}
			return nil
		}
		if err := c.ReportBranch(ctx, "x:1", 1, xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_DONE, nil); err != nil {
			t.Errorf("ReportBranch() = %v", err)
		}
		if n := f.Calls("report"); n != 3 {
			t.Errorf("ReportBranch RPCs = %d, want 3", n)
		}
	})
	t.Run("report answer not retried", func(t *testing.T) {
		before := f.Calls("report")
		f.report = func(int) error { return protocol.ToStatus(protocol.ErrNotBegin) }
		if err := c.ReportBranch(ctx, "x:1", 1, xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_DONE, nil); !errors.Is(err, protocol.ErrNotBegin) {
			t.Errorf("ReportBranch() = %v, want protocol.ErrNotBegin", err)
		}
		if n := f.Calls("report") - before; n != 1 {
			t.Errorf("ReportBranch RPCs = %d, want 1", n)
		}
	})
	t.Run("report gives up", func(t *testing.T) {
		f.report = func(int) error { return unavailable }
		// The budget may end during an attempt, which then fails with
		// DeadlineExceeded.
		err := c.ReportBranch(ctx, "x:1", 1, xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_DONE, nil)
		if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
			t.Errorf("ReportBranch() = %v, want giving up on Unavailable", err)
		}
	})
	t.Run("locks", func(t *testing.T) {
		f.locks = func(n int) (*xactpb.QueryLocksResponse, error) {
			if n == 1 {
				return nil, unavailable
			}
			return &xactpb.QueryLocksResponse{Free: true}, nil
		}
		if err := c.QueryLocks(ctx, "", "db", []string{"t:1"}); err != nil {
			t.Errorf("QueryLocks() = %v, want nil", err)
		}
		f.locks = func(int) (*xactpb.QueryLocksResponse, error) {
			return &xactpb.QueryLocksResponse{ConflictKey: "t:1", HolderXid: "x:9"}, nil
		}
		err := c.QueryLocks(ctx, "x:1", "db", []string{"t:1"})
		lc, ok := err.(*protocol.LockConflictError)
		if !ok || *lc != (protocol.LockConflictError{Resource: "db", Key: "t:1", Holder: "x:9"}) {
			t.Errorf("QueryLocks() = %#v, want *protocol.LockConflictError{db t:1 x:9}", err)
		}
	})
	c.Close()
	if _, err := c.RegisterBranch(ctx, "x:1", "db", at, nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("RegisterBranch() after Close = %v, want ErrClosed", err)
	}
}

func TestZeroClient(t *testing.T) {
	var c Client
	h := funcHandler(func(context.Context, string, Action) error { return nil })
	if err := c.Serve("db", at, h); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("zero Client Serve() = %v, want ErrInvalidOption", err)
	}
	if err := c.Start(context.Background()); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("zero Client Start() = %v, want ErrInvalidOption", err)
	}
	if _, err := c.RegisterBranch(context.Background(), "x:1", "db", at, nil, nil); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("zero Client RegisterBranch() = %v, want ErrInvalidOption", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("zero Client Close() = %v", err)
	}
}
