package protocol

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// WithToken is the dial option that authenticates a client to a TC that
// requires a token: every call carries the metadata "authorization:
// Bearer <token>". Without it, or with a wrong token, every call fails
// with ErrUnauthenticated. Add it to the options the TM's and the RM's
// connection is dialed with:
//
//	creds, err := protocol.ClientTLS(caFile, "", "", "")
//	opts := append(protocol.DialOptions(), creds,
//		protocol.WithToken(os.Getenv("XACT_TOKEN")))
//	conn, err := grpc.NewClient(tcAddr, opts...)
//
// A TC has up to two tokens, one a role: the participants' (TMs and RMs:
// the Coordinator service; tc.Config.Token, `xact server --token`) and
// the operators' (the Admin service, and the Coordinator service too;
// tc.Config.OperatorToken, `--operator-token`). A participant's token on
// an Admin call fails with codes.PermissionDenied. A TC without an
// operator token admits its one token to both.
//
// The token is sent on connections without transport security too: use
// TLS (ClientTLS) where the network between client and TC is not trusted.
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
