package it

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/tm"
)

// ledger is an idempotent phase-two handler that records every effect, so
// the test can check that each branch got exactly one outcome (I1, I7).
type ledger struct {
	mu      sync.Mutex
	effects map[string]string // "xid/branch" -> "commit" | "rollback"
	clashes []string
	calls   atomic.Int64
	flaky   atomic.Bool // answer UNKNOWN half of the time, to keep work pending
}

func newLedger() *ledger { return &ledger{effects: map[string]string{}} }

func (l *ledger) apply(a rm.Action, what string) error {
	l.calls.Add(1)
	time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
	if l.flaky.Load() && rand.IntN(2) == 0 {
		return errors.New("transient: try again")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	key := fmt.Sprintf("%s/%d", a.XID, a.BranchID)
	if prev, ok := l.effects[key]; ok && prev != what {
		l.clashes = append(l.clashes, fmt.Sprintf("%s: %s after %s", key, what, prev))
	}
	l.effects[key] = what // idempotent: a repeat changes nothing
	return nil
}

func (l *ledger) Commit(_ context.Context, a rm.Action) error   { return l.apply(a, "commit") }
func (l *ledger) Rollback(_ context.Context, a rm.Action) error { return l.apply(a, "rollback") }

func (l *ledger) outcome(xid string, branch int64) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.effects[fmt.Sprintf("%s/%d", xid, branch)]
}

// attachLedger starts an RM serving resources with led as the AT handler.
func attachLedger(t *testing.T, conn grpc.ClientConnInterface, led *ledger, resources ...string) *rm.Client {
	t.Helper()
	rmc := rm.New(conn, rm.WithClientID("it-rm"), rm.WithBackoff(20*time.Millisecond, 200*time.Millisecond))
	for _, r := range resources {
		if err := rmc.Serve(r, xactpb.BranchType_BRANCH_TYPE_AT, led); err != nil {
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

// dial connects to the TC at addr as clients should (protocol.DialOptions).
func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, append(protocol.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

type txRecord struct {
	xid      string
	branches []int64
	wantBack bool  // the business function failed on purpose
	err      error // what Do returned
}

// TestKillTCDuringPhaseTwo runs global transactions with two branches
// against a real `xact server`, kills it with SIGKILL while phase two is in
// flight (the RM answers UNKNOWN half of the time, so work is pending),
// restarts it on the same data directory and checks:
//
//	I2  every acknowledged decision is the one carried out;
//	I1  every transaction's branches all committed or all rolled back;
//	I11 nothing is left unfinished once the faults stop;
//	I5  no lock is left.
func TestKillTCDuringPhaseTwo(t *testing.T) {
	dir := t.TempDir()
	proc := startTC(t, dir, "127.0.0.1:0")
	conn := dial(t, proc.addr)

	led := newLedger()
	led.flaky.Store(true)
	rmc := attachLedger(t, conn, led, "db-a", "db-b")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mgr := tm.New(conn, tm.WithDecisionTimeout(60*time.Second))

	var (
		mu      sync.Mutex
		records []*txRecord
		acked   atomic.Int64
		wg      sync.WaitGroup
	)
	stop := make(chan struct{})
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				rec := &txRecord{wantBack: rand.IntN(5) == 0}
				rec.err = mgr.Do(ctx, tm.Options{Name: "it", Timeout: 30 * time.Second}, func(ctx context.Context) error {
					rec.xid, _ = tm.XID(ctx)
					for _, r := range []string{"db-a", "db-b"} {
						id, err := rmc.RegisterBranch(ctx, rec.xid, r, xactpb.BranchType_BRANCH_TYPE_AT,
							[]string{fmt.Sprintf("acct:%d-%d", w, i)}, nil)
						if err != nil {
							return err
						}
						rec.branches = append(rec.branches, id)
					}
					if rec.wantBack {
						return errors.New("business failure")
					}
					return nil
				})
				if rec.xid == "" {
					continue // Begin itself failed (TC down): nothing started
				}
				mu.Lock()
				records = append(records, rec)
				mu.Unlock()
				acked.Add(1)
			}
		}()
	}
	for acked.Load() < 150 {
		time.Sleep(5 * time.Millisecond)
	}
	proc.kill()
	killedAt := acked.Load()
	time.Sleep(300 * time.Millisecond)
	proc = proc.restart()
	// The kill must have caught work in flight, or this test proves nothing.
	if list, err := xactpb.NewAdminClient(conn).ListGlobals(ctx, &xactpb.ListGlobalsRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("ListGlobals after restart: %v", err)
	} else if len(list.GetGlobals()) == 0 {
		t.Fatal("nothing was unfinished at the kill; the test exercised no recovery")
	} else {
		t.Logf("%d globals unfinished right after the restart", len(list.GetGlobals()))
	}
	for acked.Load() < killedAt+100 {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	led.flaky.Store(false)

	admin := xactpb.NewAdminClient(conn)
	coord := xactpb.NewCoordinatorClient(conn)
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := admin.ListGlobals(ctx, &xactpb.ListGlobalsRequest{})
		if err == nil && len(list.GetGlobals()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("I11: unfinished after 30s: %v (err %v)", list.GetGlobals(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	locks, err := admin.ListLocks(ctx, &xactpb.ListLocksRequest{})
	if err != nil || len(locks.GetLocks()) != 0 {
		t.Errorf("I5: locks left: %v, %v", locks.GetLocks(), err)
	}

	var nCommit, nRollback, nUnknown int
	for _, rec := range records {
		st, err := coord.GetStatus(ctx, &xactpb.GetStatusRequest{Xid: rec.xid})
		if err != nil {
			t.Errorf("GetStatus(%s): %v", rec.xid, protocol.FromStatus(err))
			continue
		}
		var want string
		switch {
		case rec.err == nil:
			want, nCommit = "commit", nCommit+1
			if st.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED {
				t.Errorf("I2: %s acknowledged as committed, now %v", rec.xid, st.GetStatus())
			}
		case errors.Is(rec.err, tm.ErrUnknownOutcome):
			nUnknown++
		default:
			want, nRollback = "rollback", nRollback+1
			if st.GetStatus() == xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED {
				t.Errorf("I2: %s failed with %v but committed", rec.xid, rec.err)
			}
		}
		if want == "" {
			switch st.GetStatus() {
			case xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED:
				want = "commit"
			default:
				want = "rollback"
			}
		}
		for _, b := range rec.branches {
			if got := led.outcome(rec.xid, b); got != want {
				t.Errorf("I1: %s branch %d: effect %q, want %q (status %v, Do err %v)", rec.xid, b, got, want, st.GetStatus(), rec.err)
			}
		}
	}
	led.mu.Lock()
	if len(led.clashes) > 0 {
		t.Errorf("I7: contradictory effects: %v", led.clashes)
	}
	led.mu.Unlock()
	t.Logf("%d transactions: %d committed, %d rolled back, %d unknown to the client; %d phase-two calls",
		len(records), nCommit, nRollback, nUnknown, led.calls.Load())
	if nCommit == 0 || nRollback == 0 {
		t.Errorf("the run exercised too little: %d commits, %d rollbacks", nCommit, nRollback)
	}
}
