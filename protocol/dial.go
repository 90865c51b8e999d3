package protocol

import (
	"errors"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// Connection settings shared by the TC and its clients.
//
// An RM's Attach stream is open for as long as the RM runs and carries
// nothing while there is no phase-two work, so only the transport can tell
// that the TC behind it is gone: a TC that exits closes its connections and
// the stream fails at once, but a TC host that vanishes, or a network that
// drops the traffic, says nothing. Keepalive pings find such a silent peer:
// the client pings after KeepaliveTime without traffic and gives the
// connection up KeepaliveTimeout later, so a dead stream is noticed within
// KeepaliveTime+KeepaliveTimeout and the RM re-attaches. (A heartbeat on the
// stream itself would not do better: a new stream would open on the same
// dead connection, which gRPC keeps until its keepalive gives it up.)
const (
	// KeepaliveTime is how long a client's connection may be silent before
	// the client pings the TC. 10s is the least grpc-go allows.
	KeepaliveTime = 10 * time.Second
	// KeepaliveTimeout is how long a client waits for the answer to a ping
	// before it closes the connection. Pings are answered by the peer's
	// transport, not by application code, so only a stalled process or
	// network delays the answer; 5s tolerates a long pause of a loaded host.
	KeepaliveTimeout = 5 * time.Second
	// MinPingInterval is the shortest interval between a client's pings that
	// the TC accepts (a client that pings more often is disconnected). It is
	// half of KeepaliveTime, so that timer skew never counts against a client
	// with the settings of DialOptions.
	MinPingInterval = KeepaliveTime / 2

	// ReconnectBaseDelay and ReconnectMaxDelay bound the wait between a
	// client's attempts to connect to a TC that is down: gRPC's defaults
	// (1s doubling to 120s) leave an RM detached for minutes after a longer
	// outage; these re-attach it within about a second of the TC being back.
	// An attempt to an address that is down is a refused TCP connection, so
	// trying once a second costs nothing.
	ReconnectBaseDelay = 100 * time.Millisecond
	ReconnectMaxDelay  = time.Second
	// ConnectTimeout bounds one connection attempt (TCP and HTTP/2
	// handshakes) to an address that does not answer.
	ConnectTimeout = 5 * time.Second
)

// DialOptions are the gRPC dial options that xact's clients (tm, rm) should
// connect to a TC with: keepalive pings that the TC permits (see
// KeepaliveTime) and a reconnect backoff capped at ReconnectMaxDelay. Add
// transport credentials and anything else of your own:
//
//	opts := append(protocol.DialOptions(), grpc.WithTransportCredentials(creds))
//	conn, err := grpc.NewClient(tcAddr, opts...)
//
// A later option of the same kind replaces the one given here.
//
// Calls are balanced round-robin over every address the target resolves
// to (several coordinators on one shared store, behind a DNS name or a
// list: Target), and go only to addresses that are up, so a client fails
// over when a coordinator goes away.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"round_robin": {}}]}`),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                KeepaliveTime,
			Timeout:             KeepaliveTimeout,
			PermitWithoutStream: true,
		}),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  ReconnectBaseDelay,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   ReconnectMaxDelay,
			},
			MinConnectTimeout: ConnectTimeout,
		}),
	}
}

// Target returns the gRPC target and dial options for a coordinator
// address list: "tc-a:8091,tc-b:8091" (coordinators sharing one store; any
// of them answers any call), one host:port, or a target with a scheme
// (dns:///tc.example:8091, whose name may resolve to several). Add the
// options to DialOptions'.
func Target(addrs string) (string, []grpc.DialOption, error) {
	list := strings.Split(addrs, ",")
	if len(list) == 1 {
		return strings.TrimSpace(addrs), nil, nil
	}
	var resolved []resolver.Address
	for _, a := range list {
		a = strings.TrimSpace(a)
		if a == "" || strings.Contains(a, "://") {
			return "", nil, errors.New("protocol: an address list holds host:port entries, separated by commas")
		}
		resolved = append(resolved, resolver.Address{Addr: a})
	}
	r := manual.NewBuilderWithScheme("xact-list")
	r.InitialState(resolver.State{Addresses: resolved})
	return r.Scheme() + ":///coordinators", []grpc.DialOption{grpc.WithResolvers(r)}, nil
}
