// Package rm is xact's resource manager client: the phase-one calls a
// participant makes (RegisterBranch, ReportBranch, QueryLocks) and the
// Attach stream on which the TC pushes phase-two work to the Handlers the
// participant serves.
//
//	c := rm.New(conn) // the same *grpc.ClientConn as the tm.Manager's
//	c.Serve("orders-db", xactpb.BranchType_BRANCH_TYPE_AT, atHandler)
//	if err := c.Start(ctx); err != nil { ... } // attached to the TC
//	defer c.Close()
//
// # Phase two
//
// Every action goes to the Handler served for its (resource, branch type)
// and runs on a bounded pool (WithConcurrency), under a context with a
// deadline (WithActionTimeout) and a logger (Logger) carrying xid,
// branch_id and resource. Actions that arrive while every worker is busy
// wait in a bounded queue (WithMaxQueued); one that finds the queue full is
// dropped unanswered and the TC retries it. The context never carries an
// XID, so work done in phase two does not register new branches. The
// answer is one of three outcomes:
//
//	handler returns nil            -> DONE
//	handler returns rm.Permanent() -> FAILED: the TC parks the global for an operator
//	any other error, a panic,      -> UNKNOWN: the TC retries with backoff
//	or no handler for the action
//
// The TC may deliver an action more than once (after retries, re-attaches
// and restarts); handlers must be idempotent (I7). A delivery that arrives
// while the same action is still running waits for it and shares its
// outcome instead of running concurrently with it.
//
// Results are sent by one goroutine per stream, which packs whatever
// results are waiting into one Results message.
//
// # Connection
//
// The Client reads its stream whatever its handlers are doing, so the end
// of the stream is noticed at once; it re-attaches right away and declares
// every served resource again (attempts that the TC refuses wait with
// capped exponential backoff and jitter). Actions queued or results not yet
// sent on a stream that ended are dropped: the TC has taken them as
// UNKNOWN and delivers them again. A resource served while the stream is up
// is declared by sending a new Hello on the same stream. Status tells
// whether the Client is attached.
//
// Dial the connection with protocol.DialOptions: its keepalive notices a
// TC whose host or network vanished without closing the connection (behind
// load balancers or NAT that drop idle connections, too), and its reconnect
// backoff finds a restarted TC within about a second:
//
//	opts := append(protocol.DialOptions(), grpc.WithTransportCredentials(creds))
//	conn, err := grpc.NewClient(tcAddr, opts...)
package rm
