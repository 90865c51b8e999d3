package tm

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"

	"github.com/xact-io/xact/protocol/xactpb"
)

// fakeTC is a Coordinator whose answers a test scripts. Begin answers with
// the XID the request carried in its metadata when echo is set, so that
// propagation tests can see what arrived.
type fakeTC struct {
	xactpb.UnimplementedCoordinatorServer

	mu       sync.Mutex
	calls    map[string]int
	seq      int
	begin    func(ctx context.Context) (string, error)
	commit   func(n int) (xactpb.GlobalStatus, error)
	rollback func(n int) (xactpb.GlobalStatus, error)
	status   func(n int) (xactpb.GlobalStatus, error)
	lastXID  map[string]string
}

func newFakeTC() *fakeTC {
	return &fakeTC{calls: map[string]int{}, lastXID: map[string]string{}}
}

func (f *fakeTC) count(op, xid string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	f.lastXID[op] = xid
	return f.calls[op]
}

func (f *fakeTC) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *fakeTC) Begin(ctx context.Context, _ *xactpb.BeginRequest) (*xactpb.BeginResponse, error) {
	f.count("begin", "")
	if f.begin != nil {
		xid, err := f.begin(ctx)
		return &xactpb.BeginResponse{Xid: xid}, err
	}
	f.mu.Lock()
	f.seq++
	xid := fmt.Sprintf("fake:%d", f.seq)
	f.mu.Unlock()
	return &xactpb.BeginResponse{Xid: xid}, nil
}

func (f *fakeTC) Commit(_ context.Context, r *xactpb.CommitRequest) (*xactpb.CommitResponse, error) {
	n := f.count("commit", r.GetXid())
	if f.commit == nil {
		return &xactpb.CommitResponse{Status: xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED}, nil
	}
	st, err := f.commit(n)
	return &xactpb.CommitResponse{Status: st}, err
}

func (f *fakeTC) Rollback(_ context.Context, r *xactpb.RollbackRequest) (*xactpb.RollbackResponse, error) {
	n := f.count("rollback", r.GetXid())
	if f.rollback == nil {
		return &xactpb.RollbackResponse{Status: xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED}, nil
	}
	st, err := f.rollback(n)
	return &xactpb.RollbackResponse{Status: st}, err
}

func (f *fakeTC) GetStatus(_ context.Context, r *xactpb.GetStatusRequest) (*xactpb.GetStatusResponse, error) {
	n := f.count("status", r.GetXid())
	if f.status == nil {
		return &xactpb.GetStatusResponse{Status: xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN}, nil
	}
	st, err := f.status(n)
	return &xactpb.GetStatusResponse{Status: st}, err
}

// Attach welcomes the RM with the XID its stream carried as the node id.
func (f *fakeTC) Attach(s grpc.BidiStreamingServer[xactpb.RMMessage, xactpb.TCMessage]) error {
	xid, _ := XID(s.Context())
	return s.Send(&xactpb.TCMessage{Body: &xactpb.TCMessage_Welcome{Welcome: &xactpb.Welcome{NodeId: xid}}})
}

// incomingXID answers Begin with the XID seen in the server's context.
func incomingXID(ctx context.Context) (string, error) {
	xid, ok := XID(ctx)
	if !ok {
		xid = "none"
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if len(md.Get(MetadataKey)) > 0 && !ok {
		xid = "raw:" + md.Get(MetadataKey)[0]
	}
	return xid, nil
}

// serve runs srv on an in-memory listener and returns a connection to it;
// both are closed at cleanup.
func serve(t testing.TB, srv xactpb.CoordinatorServer, sopts []grpc.ServerOption, dopts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	s := grpc.NewServer(sopts...)
	xactpb.RegisterCoordinatorServer(s, srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(lis)
	}()
	dopts = append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, dopts...)
	conn, err := grpc.NewClient("passthrough:///bufnet", dopts...)
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
