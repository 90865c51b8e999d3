package tm

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/xact-io/xact/internal/global"
	"github.com/xact-io/xact/internal/tracing"
	"github.com/xact-io/xact/protocol"
)

// MetadataKey is the gRPC metadata key that carries the XID between
// services.
const MetadataKey = "xact-xid"

// UnaryClientInterceptor returns an interceptor that sends the XID of the
// call's context in the outgoing metadata (MetadataKey), after making sure
// the TC has begun a lazily begun transaction (EnsureBegun). A context made by
// WithoutXID removes an XID that was put into the metadata by hand. Beside
// the XID it sends the W3C trace context of the call's span (traceparent,
// tracestate), so that the callee's work joins the global's trace even
// without otelgrpc; an otelgrpc client stats handler on the connection
// replaces it with its own span's.
func UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if err := EnsureBegun(ctx); err != nil {
			return err
		}
		return invoker(outgoing(ctx), method, req, reply, cc, opts...)
	}
}

// StreamClientInterceptor is the streaming counterpart of
// UnaryClientInterceptor.
func StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if err := EnsureBegun(ctx); err != nil {
			return nil, err
		}
		return streamer(outgoing(ctx), desc, cc, method, opts...)
	}
}

// outgoing sets (or removes) MetadataKey in ctx's outgoing metadata. It
// replaces rather than appends, so a value set earlier by hand or by a
// proxy cannot reach the server as a second, different XID.
func outgoing(ctx context.Context) context.Context {
	xid, ok := XID(ctx)
	if !ok && !global.ExplicitlyWithout(ctx) {
		return ctx
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	if !ok && len(md.Get(MetadataKey)) == 0 {
		return ctx
	}
	md = md.Copy()
	if ok {
		md.Set(MetadataKey, xid)
		setTraceContext(ctx, tracing.MetadataCarrier(md))
	} else {
		md.Delete(MetadataKey)
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// UnaryServerInterceptor returns an interceptor that puts the XID of the
// incoming metadata (MetadataKey) into the handler's context (WithXID), so
// that the handler's work joins the caller's global transaction; and, if
// the context has no span yet (no otelgrpc server stats handler), the W3C
// trace context sent beside it, so that its spans join the caller's trace. A request
// whose XID is invalid (see ValidateXID), or that carries two different
// XIDs, is refused with codes.InvalidArgument (protocol.ErrInvalidArgument
// after protocol.FromStatus): running it outside the caller's transaction
// would keep effects the caller may roll back.
func UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := incoming(ctx)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor is the streaming counterpart of
// UnaryServerInterceptor.
func StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := incoming(ss.Context())
		if err != nil {
			return err
		}
		if ctx == ss.Context() {
			return handler(srv, ss)
		}
		return handler(srv, &serverStream{ServerStream: ss, ctx: ctx})
	}
}

type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context { return s.ctx }

func incoming(ctx context.Context) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(MetadataKey)
	if len(vals) == 0 {
		return ctx, nil
	}
	xid := vals[0]
	for _, v := range vals[1:] {
		if v != xid {
			return ctx, protocol.ToStatus(fmt.Errorf("tm: %d different values of metadata %s: %w", len(vals), MetadataKey, protocol.ErrInvalidArgument))
		}
	}
	if err := ValidateXID(xid); err != nil {
		return ctx, protocol.ToStatus(fmt.Errorf("metadata %s: %w: %w", MetadataKey, err, protocol.ErrInvalidArgument))
	}
	return WithXID(joinTrace(ctx, tracing.MetadataCarrier(md)), xid), nil
}
