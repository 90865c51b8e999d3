package protocol

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// WithToken is the dial option that authenticates a client to a TC that
// requires a token (tc.Config.Token, `xact server --token`): every call
// carries the metadata "authorization: Bearer <token>". Without it, or with
// a wrong token, every call fails with ErrUnauthenticated. Add it to the
// options the TM's and the RM's connection is dialed with:
//
//	opts := append(protocol.DialOptions(),
//		grpc.WithTransportCredentials(creds),
//		protocol.WithToken(os.Getenv("XACT_TOKEN")))
//	conn, err := grpc.NewClient(tcAddr, opts...)
//
// The token is sent on connections without transport security too: use
// TLS where the network between client and TC is not trusted.
func WithToken(token string) grpc.DialOption {
	return grpc.WithPerRPCCredentials(bearerToken(token))
}

// bearerToken implements credentials.PerRPCCredentials.
type bearerToken string

var _ credentials.PerRPCCredentials = bearerToken("")

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (bearerToken) RequireTransportSecurity() bool { return false }
