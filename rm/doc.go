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
// branch_id and resource. The context never carries an XID, so work done in
// phase two does not register new branches. The answer is one of three
// outcomes:
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
// After a disconnect the Client re-attaches with capped exponential backoff
// and jitter and declares every served resource again. A resource served
// while the stream is up is declared by sending a new Hello on the same
// stream. Behind load balancers or NAT that drop idle connections, give the
// connection gRPC keepalive parameters (grpc.WithKeepaliveParams) that the
// TC permits, so that a silently dead stream is noticed.
package rm
