package rm

import (
	"context"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/xact-io/xact/protocol/xactpb"
)

// fakeTC is a Coordinator that a test drives by hand: it records every
// Hello, pushes the action batches sent to its actions channel, and
// forwards every result to its results channel. Sending on kick ends the
// current stream with Unavailable.
type fakeTC struct {
	xactpb.UnimplementedCoordinatorServer

	hellos     chan *xactpb.Hello
	actions    chan []*xactpb.BranchAction
	results    chan *xactpb.BranchResult
	resultMsgs chan int // size of each Results message
	kick       chan struct{}

	mu        sync.Mutex
	calls     map[string]int
	registers []*xactpb.RegisterBranchRequest // every RegisterBranch request
	reports   []*xactpb.ReportBranchRequest   // every ReportBranch request
	register  func(n int) (int64, error)
	report    func(n int) error
	locks     func(n int) (*xactpb.QueryLocksResponse, error)
}

func newFakeTC() *fakeTC {
	return &fakeTC{
		hellos:     make(chan *xactpb.Hello, 64),
		actions:    make(chan []*xactpb.BranchAction),
		results:    make(chan *xactpb.BranchResult, 4096),
		resultMsgs: make(chan int, 4096),
		kick:       make(chan struct{}),
		calls:      map[string]int{},
	}
}

func (f *fakeTC) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	return f.calls[op]
}

func (f *fakeTC) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *fakeTC) Attach(s grpc.BidiStreamingServer[xactpb.RMMessage, xactpb.TCMessage]) error {
	f.count("attach")
	msg, err := s.Recv()
	if err != nil {
		return err
	}
	if msg.GetHello() == nil {
		return status.Error(codes.InvalidArgument, "want hello first")
	}
	f.hellos <- msg.GetHello()
	if err := s.Send(&xactpb.TCMessage{Body: &xactpb.TCMessage_Welcome{Welcome: &xactpb.Welcome{NodeId: "fake"}}}); err != nil {
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
				f.hellos <- h
			}
			if rs := msg.GetResults(); rs != nil {
				f.resultMsgs <- len(rs.GetResults())
				for _, r := range rs.GetResults() {
					f.results <- r
				}
			}
		}
	}()
	for {
		select {
		case batch := <-f.actions:
			if err := s.Send(&xactpb.TCMessage{Body: &xactpb.TCMessage_Actions{Actions: &xactpb.Actions{Actions: batch}}}); err != nil {
				return err
			}
		case <-f.kick:
			return status.Error(codes.Unavailable, "kicked")
		case <-recvDone:
			return nil
		case <-s.Context().Done():
			return nil
		}
	}
}

func (f *fakeTC) RegisterBranch(_ context.Context, req *xactpb.RegisterBranchRequest) (*xactpb.RegisterBranchResponse, error) {
	f.mu.Lock()
	f.registers = append(f.registers, req)
	f.mu.Unlock()
	n := f.count("register")
	id, err := f.register(n)
	return &xactpb.RegisterBranchResponse{BranchId: id}, err
}

func (f *fakeTC) ReportBranch(_ context.Context, req *xactpb.ReportBranchRequest) (*xactpb.ReportBranchResponse, error) {
	f.mu.Lock()
	f.reports = append(f.reports, req)
	f.mu.Unlock()
	n := f.count("report")
	return &xactpb.ReportBranchResponse{}, f.report(n)
}

func (f *fakeTC) QueryLocks(context.Context, *xactpb.QueryLocksRequest) (*xactpb.QueryLocksResponse, error) {
	n := f.count("locks")
	return f.locks(n)
}

// serve runs srv on an in-memory listener and returns a connection to it;
// both are closed at cleanup.
func serve(t testing.TB, srv xactpb.CoordinatorServer) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	s := grpc.NewServer()
	xactpb.RegisterCoordinatorServer(s, srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(lis)
	}()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() {
		conn.Close()
		s.Stop()
		<-done
	})
	return conn
}
