// Package saga runs orchestrated sagas for xact, defined in code.
//
// A saga is a name and ordered steps over a state S. Each step is an
// action, which takes the state and returns the next one, and a
// compensation, both registered under the step's name so that a restarted
// process finds the compensation again:
//
//	type Trip struct {
//		User     string `json:"user"`
//		FlightID string `json:"flight_id,omitempty"`
//		HotelID  string `json:"hotel_id,omitempty"`
//	}
//
//	bookTrip, err := saga.Define(tmgr, rmc, "book-trip",
//		saga.Step("flight", bookFlight, cancelFlight),
//		saga.Step("hotel", bookHotel, cancelHotel,
//			saga.WithRetry(saga.RetryPolicy{Attempts: 3})),
//		saga.FencedStep("charge", fence, charge, refund), // works in one database
//	)
//	rmc.Start(ctx)
//	...
//	trip, err := bookTrip.Run(ctx, Trip{User: "ann"})
//
// with, for example,
//
//	func bookFlight(ctx context.Context, t Trip) (Trip, error) {
//		id, err := flights.Book(ctx, t.User) // a gRPC client with tm.UnaryClientInterceptor
//		t.FlightID = id
//		return t, err
//	}
//
//	func cancelFlight(ctx context.Context, r saga.Record[Trip]) error {
//		if r.Output == nil {
//			// Unknown or failed: the booking may or may not exist.
//			return flights.CancelByRequest(ctx, r.XID, r.BranchID)
//		}
//		return flights.Cancel(ctx, r.Output.FlightID) // idempotent
//	}
//
// # How it runs
//
// Run begins a global transaction (tm.Manager.Do) and runs the steps in
// order. Each step is a branch of BRANCH_TYPE_SAGA on resource
// "saga/step": it is registered with its input as application data before
// the action runs, and reported after it (PHASE_ONE_DONE with input and
// output, or PHASE_ONE_FAILED with the error), so the TC holds what every
// compensation needs. A failure is reported at once; a success travels
// with the saga's next request to the TC (the next step's registration,
// or the commit or rollback), which makes it durable in the same write: a
// saga of n steps costs n registrations and the decision, n+1 round trips.
// An action that fails transiently is retried per the
// step's RetryPolicy; when it gives up, Run rolls back and returns a
// *StepError (or, if the rollback cannot be confirmed, tm.Do's error
// matching tm.ErrUnknownOutcome). When all steps succeed, Run commits.
//
// Compensation is the TC's job, not the orchestrator's: on rollback (a
// failed step, a Rollback, or the global timeout after the orchestrating
// process died) the TC undoes the branches one at a time in reverse
// registration order, pushing each compensation to an rm.Client that
// defined the saga, and retries it with backoff until it returns nil, or
// parks the saga with its reason when it returns an rm.Permanent error or
// the retry budget is spent. A process that crashes halfway through the
// forward path leaves a global in Begin, which the TC times out and
// compensates (set tm.Options.Timeout with RunWith); one that crashes
// halfway through compensation is replaced by whichever process serves the
// saga next. Every saga thus ends all-forward or all-compensated.
//
// # What a compensation must tolerate
//
// A compensation is called for every registered step, including the one
// whose action failed, and may be called more than once. The Record tells
// it what is known: StepDone with the output; StepFailed with the error;
// or StepUnknown when the process stopped between registering the step and
// recording its outcome (which goes with the saga's next request) — the action may not have run at all, or may have
// run partly or fully. Compensations must be idempotent and must accept a
// step that did nothing. Steps whose work is in one database get both for
// free from FencedStep, which keeps a fence.Fence row in the step's local
// transaction: a step that never committed is not compensated, a
// compensation runs at most once, and an action that arrives after its
// compensation is refused. A step that calls a remote service can send
// its (XID, BranchID) (StepFrom) so that the service fences its own work
// with the same key.
//
// # A state-machine document later
//
// The runtime is built so that a Seata-style state-machine document
// (ServiceTask, Choice, Succeed, Fail, CompensationTrigger) can drive it
// without changing what the TC stores. A document package would parse the
// JSON, resolve each ServiceTask's service and its CompensateState to
// actions and compensations registered by name (exactly what Step does
// today), and interpret the graph instead of a list: ServiceTask runs one
// step (register, act with retries, report — the same record, so
// compensation is unchanged); Choice evaluates expressions over the state
// S (a map[string]any for documents) and picks the next state; Succeed
// commits; Fail and CompensationTrigger return an error from the
// transaction function, which rolls back, and the TC compensates the
// branches in reverse order of execution — which is registration order,
// so loops and branches in the graph compensate correctly. Resource ids
// stay "machine/state", so processes that load the same document serve
// the same compensations.
package saga
