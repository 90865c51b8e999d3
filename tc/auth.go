package tc

import (
	"context"
	"crypto/subtle"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
)

// Who may call what. Two roles, each with its bearer token:
//
//   - participants (TMs and RMs: the Coordinator service, Begin to Attach)
//     present Config.Token;
//   - operators (the Admin service: list, show, force commit/rollback,
//     locks, backup) present Config.OperatorToken, which admits to the
//     Coordinator service too.
//
// Without OperatorToken there is one role: Token admits to everything, as
// before operators had a token of their own. Without Token the Coordinator
// service is open (to whoever the network and, with mutual TLS, a client
// certificate let in). The gRPC health service is always open: load
// balancers' and Kubernetes' probes send no credentials.
//
// A call without a token the server accepts is Unauthenticated; a
// participant's token on an operator's call is PermissionDenied, before
// the handler runs, so nothing is changed.

// role is what a credential admits to, and what a method needs; a higher
// role admits to everything a lower one does.
type role int

const (
	roleNone        role = iota // no credential / an open method
	roleParticipant             // Token
	roleOperator                // OperatorToken (Token when there is no OperatorToken)
)

// Method prefixes (gRPC full method names are "/service/method").
var (
	healthService      = "/grpc.health.v1.Health/"
	coordinatorService = "/" + xactpb.Coordinator_ServiceDesc.ServiceName + "/"
)

// methodRole is the role fullMethod needs. Everything that is not the
// health or the Coordinator service is the operators' (the Admin service,
// and any service added later until someone decides otherwise).
func methodRole(fullMethod string) role {
	switch {
	case strings.HasPrefix(fullMethod, healthService):
		return roleNone
	case strings.HasPrefix(fullMethod, coordinatorService):
		return roleParticipant
	}
	return roleOperator
}

// validateTokens: tokens travel as HTTP/2 header values, which hold
// printable ASCII only (a token read from a file with its newline would
// fail every call), and the two roles need two different tokens.
func (c *Config) validateTokens() []error {
	var errs []error
	for _, f := range []struct{ name, tok string }{{"Token", c.Token}, {"OperatorToken", c.OperatorToken}} {
		for _, r := range f.tok {
			if r <= ' ' || r > '~' {
				errs = append(errs, &ConfigError{Field: f.name, Value: secret{},
					Rule: "must be printable ASCII without spaces or line breaks"})
				break
			}
		}
	}
	if c.Token != "" && c.Token == c.OperatorToken {
		errs = append(errs, &ConfigError{Field: "OperatorToken", Value: secret{}, Rule: "must differ from",
			Other: "Token", OtherValue: secret{}})
	}
	return errs
}

// credential is the highest role that a bearer token in ctx's metadata
// admits to. Every token is compared with both configured ones in
// constant time.
func (s *Server) credential(ctx context.Context) (r role, presented bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		tok, ok := strings.CutPrefix(v, "Bearer ")
		if !ok {
			continue
		}
		presented = true
		isOp := s.cfg.OperatorToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.OperatorToken)) == 1
		isPart := s.cfg.Token != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.Token)) == 1
		switch {
		case isOp, isPart && s.cfg.OperatorToken == "":
			r = roleOperator
		case isPart:
			r = max(r, roleParticipant)
		}
	}
	return r, presented
}

// authorize admits a call of fullMethod, or returns the status error that
// refuses it.
func (s *Server) authorize(ctx context.Context, fullMethod string) error {
	need := methodRole(fullMethod)
	switch {
	case need == roleNone:
		return nil
	case need == roleParticipant && s.cfg.Token == "":
		return nil
	case s.cfg.Token == "" && s.cfg.OperatorToken == "":
		return nil
	}
	got, presented := s.credential(ctx)
	switch {
	case got >= need:
		return nil
	case got == roleParticipant:
		return permissionDenied(fullMethod)
	case !presented:
		return protocol.ToStatus(fmt.Errorf("%w: %s needs a bearer token (authorization metadata) and the call has none", protocol.ErrUnauthenticated, fullMethod))
	}
	return protocol.ToStatus(fmt.Errorf("%w: %s: the bearer token is not one this coordinator accepts", protocol.ErrUnauthenticated, fullMethod))
}

// permissionDenied is the answer to a participant's token on an
// operator's call: protocol.ErrPermissionDenied, which the client gets
// back from protocol.FromStatus.
func permissionDenied(fullMethod string) error {
	return protocol.ToStatus(fmt.Errorf("%w: %s is for operators, and the participant token does not admit to the Admin service; call it with the operator token",
		protocol.ErrPermissionDenied, fullMethod))
}

func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := s.authorize(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	resp, err := h(ctx, req)
	return resp, protocol.ToStatus(err)
}

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := s.authorize(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return protocol.ToStatus(h(srv, ss))
}
