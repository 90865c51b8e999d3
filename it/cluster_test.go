package it

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/xact-io/xact/internal/mysqltest"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/tm"
)

// actionLog records every phase-two action an RM received, with the
// coordinator it came through and when.
type actionLog struct {
	mu   sync.Mutex
	seen map[string][]nodeAction // xid -> actions in arrival order
}

type nodeAction struct {
	node string
	at   time.Time
	kind string
}

func (l *actionLog) add(xid, node, kind string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen[xid] = append(l.seen[xid], nodeAction{node, time.Now(), kind})
}

// nodeHandler is the RM side attached to one coordinator: it logs each
// action and then fails it (refuse) or applies it to the ledger.
type nodeHandler struct {
	node   string
	log    *actionLog
	led    *ledger
	refuse bool
}

func (h *nodeHandler) handle(a rm.Action, kind string) error {
	h.log.add(a.XID, h.node, kind)
	if h.refuse {
		return fmt.Errorf("transient: %s cannot reach its database", h.node)
	}
	return h.led.apply(a, kind)
}

func (h *nodeHandler) Commit(_ context.Context, a rm.Action) error   { return h.handle(a, "commit") }
func (h *nodeHandler) Rollback(_ context.Context, a rm.Action) error { return h.handle(a, "rollback") }

// TestClusterTakeover: two coordinators, a and b, on one MariaDB store,
// with an RM attached to each. 1,000 globals decided on a, whose phase two a
// cannot finish (its RM answers UNKNOWN), are in flight when a is
// SIGKILLed; b takes them over once a's lease runs out and finishes every
// one (the time it took is logged). Afterwards every branch is committed
// (I1, I2), no lock is left (I5), and for each global no action came
// through a after one came through b (one driver at a time). A third
// coordinator under b's live node id is refused at start.
func TestClusterTakeover(t *testing.T) {
	const n = 1000 // the failover size
	const lease = 2 * time.Second
	dsn := mysqltest.DSN(t)
	if out, err := exec.Command(xactBin, "sql", "migrate", "--store", "mysql", "--store-dsn", dsn).CombinedOutput(); err != nil {
		t.Fatalf("xact sql migrate: %v\n%s", err, out)
	}
	args := append([]string{"--store", "mysql", "--store-dsn", dsn, "--lease", lease.String()}, faultTCArgs...)
	a := startTC(t, t.TempDir(), "127.0.0.1:0", append(args, "--node-id", "a")...)
	b := startTC(t, t.TempDir(), "127.0.0.1:0", append(args, "--node-id", "b")...)

	// A second coordinator under a live id: refused once b's lease is
	// still renewed after waiting a lease and a half.
	dup := exec.Command(xactBin, append([]string{"server", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--node-id", "b"}, args...)...)
	if out, err := dup.CombinedOutput(); err == nil || !strings.Contains(string(out), "live coordinator holds this node id") {
		t.Errorf("xact server under a live node id = %v, %s; want a refusal naming the live id", err, out)
	}

	alog := &actionLog{seen: map[string][]nodeAction{}}
	led := newLedger()
	connA, connB := dial(t, a.addr), dial(t, b.addr)
	rmA := attachLedgerHandler(t, connA, &nodeHandler{node: "a", log: alog, led: led, refuse: true}, "db-a", "db-b")
	attachLedgerHandler(t, connB, &nodeHandler{node: "b", log: alog, led: led}, "db-a", "db-b")
	mgr := tm.New(connA, tm.WithDecisionTimeout(30*time.Second))

	ctx := context.Background()
	var (
		mu   sync.Mutex
		recs []*txRecord
		wg   sync.WaitGroup
	)
	for w := 0; w < 16; w++ {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				rec := &txRecord{}
				rec.err = mgr.Do(ctx, tm.Options{Name: "takeover", Timeout: time.Minute}, func(ctx context.Context) error {
					rec.xid, _ = tm.XID(ctx)
					for _, r := range []string{"db-a", "db-b"} {
						id, err := rmA.RegisterBranch(ctx, rec.xid, r, xactpb.BranchType_BRANCH_TYPE_AT, []string{fmt.Sprintf("acct:%d:%s", i, r)}, nil)
						if err != nil {
							return err
						}
						rec.branches = append(rec.branches, id)
					}
					return nil
				})
				mu.Lock()
				recs = append(recs, rec)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, rec := range recs {
		if rec.err != nil {
			t.Fatalf("Do(%s) = %v; every global should commit (AT: answered at the durable decision)", rec.xid, rec.err)
		}
	}
	adminB := xactpb.NewAdminClient(connB)
	list, err := adminB.ListGlobals(ctx, &xactpb.ListGlobalsRequest{})
	if err != nil || len(list.GetGlobals()) < n/2 {
		t.Fatalf("unfinished before the kill = %d, %v; want most of the %d decided globals (a cannot finish them)", len(list.GetGlobals()), err, n)
	}
	t.Logf("%d globals in flight on a when it is killed", len(list.GetGlobals()))

	a.kill()
	killed := time.Now()
	for {
		list, err := adminB.ListGlobals(ctx, &xactpb.ListGlobalsRequest{})
		if err == nil && len(list.GetGlobals()) == 0 {
			break
		}
		// A bound for a stuck takeover, not a speed check: how long the
		// takeover took is logged (issue 12 asks for lease + 5 s; the
		// numbers are in docs/notes.md).
		if time.Since(killed) > lease+60*time.Second {
			t.Fatalf("%d globals still unfinished %v after a's kill (lease %v), err %v", len(list.GetGlobals()), time.Since(killed), lease, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("b finished a's globals %v after the kill (lease %v)", time.Since(killed).Round(time.Millisecond), lease)

	if locks, err := adminB.ListLocks(ctx, &xactpb.ListLocksRequest{}); err != nil || len(locks.GetLocks()) != 0 {
		t.Errorf("I5: locks left: %v, %v", locks.GetLocks(), err)
	}
	coordB := xactpb.NewCoordinatorClient(connB)
	alog.mu.Lock()
	defer alog.mu.Unlock()
	for _, rec := range recs {
		st, err := coordB.GetStatus(ctx, &xactpb.GetStatusRequest{Xid: rec.xid})
		if err != nil || st.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED {
			t.Errorf("I2: %s acknowledged as committed, status %v, %v", rec.xid, st.GetStatus(), err)
		}
		for _, br := range rec.branches {
			if got := led.outcome(rec.xid, br); got != "commit" {
				t.Errorf("I1: %s branch %d: effect %q, want commit", rec.xid, br, got)
			}
		}
		var lastA, firstB time.Time
		for _, act := range alog.seen[rec.xid] {
			switch {
			case act.node == "a":
				lastA = act.at
			case firstB.IsZero():
				firstB = act.at
			}
		}
		if !firstB.IsZero() && lastA.After(firstB) {
			t.Errorf("%s was driven by a and b at once: an action through a at %v, after b's first at %v", rec.xid, lastA, firstB)
		}
		if firstB.IsZero() {
			t.Errorf("%s: no action through b, yet it finished", rec.xid)
		}
	}
}

// attachLedgerHandler starts an RM on conn serving resources (AT) with h.
func attachLedgerHandler(t *testing.T, conn *grpc.ClientConn, h rm.Handler, resources ...string) *rm.Client {
	t.Helper()
	rmc := rm.New(conn, rm.WithClientID("it-rm"), rm.WithBackoff(20*time.Millisecond, 200*time.Millisecond))
	for _, r := range resources {
		if err := rmc.Serve(r, xactpb.BranchType_BRANCH_TYPE_AT, h); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rmc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rmc.Close() })
	return rmc
}
