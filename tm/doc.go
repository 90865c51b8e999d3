// Package tm is xact's transaction manager: it begins, commits and rolls
// back global transactions on a TC, and carries the XID of the current
// global transaction from service to service.
//
// Most code needs only Do:
//
//	conn, _ := grpc.NewClient(tcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
//	m := tm.New(conn)
//	err := m.Do(ctx, tm.Options{Name: "transfer", Timeout: 30 * time.Second}, func(ctx context.Context) error {
//		// Every database write made with ctx (through the datasource
//		// wrapper), every TCC Try and every call made through the
//		// propagation helpers below joins the global transaction.
//		if err := debit(ctx, from, amount); err != nil {
//			return err // rolls everything back
//		}
//		return credit(ctx, to, amount)
//	})
//	switch {
//	case err == nil:                           // committed
//	case errors.Is(err, tm.ErrUnknownOutcome): // may still commit or roll back: ask later, never assume
//	default:                                   // rolled back: fn's error, or tm.ErrRolledBack (e.g. it timed out)
//	}
//
// # Outcomes
//
// Do's error tells the outcome of the global transaction it began; check
// ErrUnknownOutcome first. nil: committed. An error matching
// ErrUnknownOutcome: Do could not learn the outcome (the TC was
// unreachable for the whole decision timeout); the error is an
// *OutcomeError whose BusinessErr is fn's error, which is deliberately
// not in the chain: errors.Is(err, fnErr) is true only when the rollback
// is known to be decided. Anything else: nothing was kept (fn's error
// after its rollback, or ErrRolledBack when the commit turned out to be a
// rollback), except for the rare ErrCommitted (fn failed but an operator
// committed the transaction first, also an *OutcomeError). The examples
// of Manager.Do show each outcome.
//
// # Decisions
//
// Commit and Rollback are safe to repeat on the TC, so they are retried
// with capped exponential backoff and jitter while the outcome is unknown,
// detached from the caller's cancellation and under their own deadline.
// Begin is not safe to repeat and is never retried after an ambiguous
// failure. A commit whose decision is durable counts as committed even
// while phase two is still running: that is the TC's job from then on.
//
// # Lazy Begin
//
// Do does not ask the TC to begin: it makes the XID from a namespace the TC
// reserved for the Manager, and the TC begins the global transaction when it
// first hears of it — from the first branch registration (which carries the
// name and the remaining timeout), from the propagation helpers below (they
// call EnsureBegun before the XID leaves the process), or from Commit and
// Rollback. A Do whose function registered nothing and sent its XID nowhere
// costs no RPC at all. Send an XID any other way (a message payload, a
// header set by hand) only after EnsureBegun(ctx). Manager.Begin is eager.
//
// # Propagation
//
// The XID travels in gRPC metadata (MetadataKey, "xact-xid") and in the
// HTTP header Header ("Xact-Xid"):
//
//	grpc.NewClient(addr, grpc.WithUnaryInterceptor(tm.UnaryClientInterceptor()), grpc.WithStreamInterceptor(tm.StreamClientInterceptor()))
//	grpc.NewServer(grpc.UnaryInterceptor(tm.UnaryServerInterceptor()), grpc.StreamInterceptor(tm.StreamServerInterceptor()))
//	http.Handle("/", tm.Middleware(mux))
//	client := &http.Client{Transport: tm.Transport(nil)}
//
// A server refuses an incoming XID that fails ValidateXID instead of
// running the request outside the caller's transaction.
package tm
