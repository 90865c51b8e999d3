package tc

import (
	"context"
	"slices"
	"sync"

	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/tc/internal/hub"
)

// wakeStatuses are the statuses of globals whose phase two is under way and
// not parked: the ones an attaching RM may be waited for by.
var wakeStatuses = []storage.Status{
	stCommitting, stCommitRetrying, stAsyncCommitting,
	stRollbacking, stRollbackRetrying, stTimeoutRollbacking, stTimeoutRollbackRetry,
}

// wakeLimit bounds the globals one wake-up reads; the scanner still finds
// any beyond it when they are due.
const wakeLimit = 10000

// waker gives phase two that was waiting for an RM a round as soon as that
// RM attaches. A round that finds no RM for a branch is UNKNOWN and waits
// its backoff (up to RetryMax) before the next one; without the waker, an
// RM that comes back (a deploy, a restart of the TC, which RMs find within
// about a second) would wait for that slot too.
//
// The hub reports every declaration of routes (attached); one goroutine,
// owned by the Server, reads the globals in phase two, and kicks each one
// whose next branch to act on is on a declared route (wake). Declarations
// that arrive while it works are taken together in the next pass.
type waker struct {
	s      *Server
	signal chan struct{}
	mu     struct {
		sync.Mutex
		routes map[hub.Route]struct{}
	}
}

func newWaker(s *Server) *waker {
	w := &waker{s: s, signal: make(chan struct{}, 1)}
	w.mu.routes = map[hub.Route]struct{}{}
	return w
}

// attached records routes an RM declared. It never blocks (the hub calls
// it on the stream's goroutine).
func (w *waker) attached(rs []hub.Route) {
	w.mu.Lock()
	for _, r := range rs {
		w.mu.routes[r] = struct{}{}
	}
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// loop runs wake passes until ctx ends.
func (w *waker) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.signal:
		}
		w.mu.Lock()
		routes := w.mu.routes
		w.mu.routes = map[hub.Route]struct{}{}
		w.mu.Unlock()
		w.wake(ctx, routes)
	}
}

// wake kicks every unparked global in phase two whose next action goes to
// one of routes: for a commit, any branch not committed yet (they are sent
// in parallel); for a rollback, the next branch to undo, in reverse
// registration order (I9) — a rollback stuck on another RM's branch would
// only spend an attempt of its budget.
func (w *waker) wake(ctx context.Context, routes map[hub.Route]struct{}) {
	gs, err := w.s.ledger.ListGlobals(ctx, storage.Filter{Statuses: wakeStatuses, Limit: wakeLimit})
	if err != nil {
		if ctx.Err() == nil {
			w.s.log.Warn("wake phase two on attach", "err", err)
		}
		return
	}
	n := 0
	for _, g := range gs {
		if g.Parked {
			continue
		}
		bs, err := w.s.ledger.Branches(ctx, g.XID)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			continue // finished meanwhile, or unreadable: the scanner has it
		}
		if waitsFor(g, bs, routes) {
			w.s.drive.kick(g.XID)
			n++
		}
	}
	if n > 0 {
		w.s.log.Info("rm attached: phase two resumed", "globals", n)
	}
}

// waitsFor reports whether g's next phase-two round sends an action on one
// of routes.
func waitsFor(g *storage.Global, bs []*storage.Branch, routes map[hub.Route]struct{}) bool {
	on := func(b *storage.Branch) bool {
		_, ok := routes[hub.Route{Resource: b.Resource, Type: b.Type}]
		return ok
	}
	if commitFamily(g.Status) {
		return slices.ContainsFunc(bs, func(b *storage.Branch) bool { return b.Status != brCommitted && on(b) })
	}
	for i := len(bs) - 1; i >= 0; i-- { // registration order, reversed
		if bs[i].Status != brRollbacked {
			return on(bs[i])
		}
	}
	return false
}
