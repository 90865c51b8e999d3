// Package transport holds the gRPC plumbing the bank's services share: the
// interceptors that carry a global transaction's XID from service to
// service, and serving until shutdown.
package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/xact-io/xact/datasource"
	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/rm/fence"
	"github.com/xact-io/xact/tm"
)

// DialTC connects to the coordinator. The connection is shared by the
// service's tm.Manager and rm.Client. It carries no XID interceptor: the
// TC's RPCs name their transaction in the request. protocol.DialOptions
// gives it keepalive, so the RM notices a TC that vanished, and a short
// reconnect backoff, so it re-attaches soon after the TC is back.
func DialTC(addr string) (*grpc.ClientConn, error) {
	target, topts, err := protocol.Target(addr) // one coordinator, or a list
	if err != nil {
		return nil, fmt.Errorf("dial TC %s: %w", addr, err)
	}
	conn, err := grpc.NewClient(target, append(append(protocol.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials())), topts...)...)
	if err != nil {
		return nil, fmt.Errorf("dial TC %s: %w", addr, err)
	}
	return conn, nil
}

// DialService connects to another bank service. tm.UnaryClientInterceptor
// copies the XID of each call's context into the request's metadata
// ("xact-xid"), so that what the callee does joins the caller's global
// transaction.
func DialService(addr string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(tm.UnaryClientInterceptor()))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return conn, nil
}

// NewServer returns a gRPC server whose handlers run in the caller's
// global transaction: tm.UnaryServerInterceptor puts the XID of the
// request's metadata into the handler's context (tm.XID reads it), and
// refuses a malformed one rather than run the request outside the
// caller's transaction.
func NewServer() *grpc.Server {
	return grpc.NewServer(grpc.UnaryInterceptor(tm.UnaryServerInterceptor()))
}

// shutdownGrace bounds how long Serve waits for requests in flight.
const shutdownGrace = 10 * time.Second

// Serve serves srv on lis until ctx ends, then stops it gracefully (within
// shutdownGrace). It returns nil after a shutdown asked for by ctx.
func Serve(ctx context.Context, srv *grpc.Server, lis net.Listener) error {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		t := time.AfterFunc(shutdownGrace, srv.Stop)
		defer t.Stop()
		srv.GracefulStop()
	}()
	err := srv.Serve(lis)
	close(done)
	<-stopped
	if errors.Is(err, grpc.ErrServerStopped) || ctx.Err() != nil {
		return nil
	}
	return err
}

// Error converts a handler's error to a gRPC status error. Errors that
// already carry a status keep it; xact's refusals get the code a caller
// can act on; anything else is Internal.
func Error(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	case errors.Is(err, datasource.ErrLockConflict):
		// Another global transaction held a row for longer than the
		// data source's lock-wait budget: try again later.
		return status.Error(codes.Aborted, err.Error())
	case errors.Is(err, fence.ErrTryAfterCancel), errors.Is(err, fence.ErrAlreadyTried):
		// The fence refused a step that was already cancelled or done.
		return status.Error(codes.Aborted, err.Error())
	case errors.Is(err, datasource.ErrBranchRolledBack):
		return status.Error(codes.Aborted, err.Error())
	case rm.IsPermanent(err):
		// Retrying cannot fix it (see rm.Permanent); a caller running a
		// compensation passes that on to the TC, which parks the
		// transaction for an operator.
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}
