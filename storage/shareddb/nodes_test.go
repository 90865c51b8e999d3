package shareddb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
)

// twoNodes opens two stores on one fresh database, as two coordinators.
func twoNodes(t *testing.T, be backend) (a, b *Store) {
	t.Helper()
	dsn := be.dsn(t)
	a = openMigrated(t, be.dialect, dsn)
	b, err := Open(context.Background(), be.dialect, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

// TestJoin: a node id is held by one live coordinator at a time; joining
// again after it left bumps the epoch, and the old holder's renewal then
// fails.
func TestJoin(t *testing.T) {
	ctx := context.Background()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			a, b := twoNodes(t, be)
			if e, err := a.Join(ctx, "tc-a", "10.0.0.1:8091", time.Minute); err != nil || e != 1 {
				t.Fatalf("Join(tc-a) = %d, %v; want 1", e, err)
			}
			if _, err := b.Join(ctx, "tc-a", "10.0.0.2:8091", time.Minute); !errors.Is(err, ErrNodeLive) {
				t.Fatalf("Join of a live id = %v, want %v", err, ErrNodeLive)
			}
			if err := a.Renew(ctx); err != nil {
				t.Fatalf("Renew = %v", err)
			}
			if err := a.Leave(ctx); err != nil {
				t.Fatalf("Leave = %v", err)
			}
			if e, err := b.Join(ctx, "tc-a", "10.0.0.2:8091", time.Minute); err != nil || e != 2 {
				t.Fatalf("Join after Leave = %d, %v; want 2", e, err)
			}
			if err := a.Renew(ctx); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("Renew of the replaced epoch = %v, want %v", err, ErrLeaseLost)
			}
			nodes, err := a.Nodes(ctx)
			if err != nil || len(nodes) != 1 || nodes[0].Epoch != 2 || !nodes[0].Live || nodes[0].Addr != "10.0.0.2:8091" {
				t.Errorf("Nodes = %+v, %v; want tc-a epoch 2, live, at 10.0.0.2:8091", nodes, err)
			}
		})
	}
}

// TestOwnership: the node whose decision took a global out of Begin
// drives it; the other node's writes to it fail with
// storage.ErrNotOwner, and its Claim fails while the owner is live. Once
// the owner leaves, the other claims it and drives it, and the old
// owner's writes are fenced off. Writes in Begin are anyone's.
func TestOwnership(t *testing.T) {
	ctx := context.Background()
	accept := func(*storage.Global) error { return nil }
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			a, b := twoNodes(t, be)
			if _, err := a.Join(ctx, "tc-a", "", time.Minute); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Join(ctx, "tc-b", "", time.Minute); err != nil {
				t.Fatal(err)
			}
			g := &storage.Global{XID: "x1", Status: xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN}
			if err := a.CreateGlobal(ctx, g, storage.Durable); err != nil {
				t.Fatal(err)
			}
			// In Begin, either node registers and reports.
			for _, s := range []*Store{a, b} {
				if _, _, err := s.AddBranch(ctx, &storage.Branch{XID: "x1", Resource: "db"}, nil, accept, storage.Durable); err != nil {
					t.Fatalf("AddBranch in Begin = %v", err)
				}
			}
			report := func(s *Store) error {
				_, err := s.UpdateBranch(ctx, "x1", 1, func(br *storage.Branch) error {
					br.Status = xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_DONE
					return nil
				}, storage.Durable)
				return err
			}
			if err := report(b); err != nil {
				t.Fatalf("UpdateBranch in Begin by the other node = %v", err)
			}
			// b decides: b drives it.
			if _, err := b.UpdateGlobal(ctx, "x1", func(g *storage.Global) error {
				g.Status = xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTING
				return nil
			}, storage.Durable); err != nil {
				t.Fatal(err)
			}
			touch := func(g *storage.Global) error { g.Attempts++; return nil }
			if _, err := a.UpdateGlobal(ctx, "x1", touch, storage.Durable); !errors.Is(err, storage.ErrNotOwner) {
				t.Errorf("UpdateGlobal by a non-owner = %v, want %v", err, storage.ErrNotOwner)
			}
			if err := report(a); !errors.Is(err, storage.ErrNotOwner) {
				t.Errorf("UpdateBranch by a non-owner = %v, want %v", err, storage.ErrNotOwner)
			}
			if err := a.FinishGlobal(ctx, "x1", xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED, storage.Durable); !errors.Is(err, storage.ErrNotOwner) {
				t.Errorf("FinishGlobal by a non-owner = %v, want %v", err, storage.ErrNotOwner)
			}
			if ok, err := a.Claim(ctx, "x1"); err != nil || ok {
				t.Errorf("Claim of a live node's global = %v, %v; want false", ok, err)
			}
			if ok, err := b.Claim(ctx, "x1"); err != nil || !ok {
				t.Errorf("Claim by its owner = %v, %v; want true", ok, err)
			}
			if _, err := b.UpdateGlobal(ctx, "x1", touch, storage.Durable); err != nil {
				t.Errorf("UpdateGlobal by the owner = %v", err)
			}
			// The owner goes away: a takes over, and b is fenced off.
			if err := b.Leave(ctx); err != nil {
				t.Fatal(err)
			}
			if ok, err := a.Claim(ctx, "x1"); err != nil || !ok {
				t.Fatalf("Claim after the owner left = %v, %v; want true", ok, err)
			}
			if err := report(a); err != nil {
				t.Errorf("UpdateBranch by the new owner = %v", err)
			}
			if _, err := b.UpdateGlobal(ctx, "x1", touch, storage.Durable); !errors.Is(err, storage.ErrNotOwner) {
				t.Errorf("UpdateGlobal by the old owner = %v, want %v", err, storage.ErrNotOwner)
			}
			if err := a.FinishGlobal(ctx, "x1", xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED, storage.Durable); err != nil {
				t.Errorf("FinishGlobal by the new owner = %v", err)
			}
		})
	}
}

// TestLeaseExpires: a node that stops renewing loses its globals once its
// lease runs out, without leaving.
func TestLeaseExpires(t *testing.T) {
	ctx := context.Background()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			a, b := twoNodes(t, be)
			if _, err := a.Join(ctx, "tc-a", "", 300*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Join(ctx, "tc-b", "", time.Minute); err != nil {
				t.Fatal(err)
			}
			g := &storage.Global{XID: "x1", Status: xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN}
			if err := a.CreateGlobal(ctx, g, storage.Durable); err != nil {
				t.Fatal(err)
			}
			if _, err := a.UpdateGlobal(ctx, "x1", func(g *storage.Global) error {
				g.Status = xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKING
				return nil
			}, storage.Durable); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				ok, err := b.Claim(ctx, "x1")
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the global of a node whose lease ran out was never claimable")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err := a.Renew(ctx); err != nil {
				// Its row is still its own epoch: a late renewal succeeds,
				// but the global stays with b.
				t.Logf("Renew after expiry = %v", err)
			}
			if _, err := a.UpdateGlobal(ctx, "x1", func(g *storage.Global) error { return nil }, storage.Durable); !errors.Is(err, storage.ErrNotOwner) {
				t.Errorf("UpdateGlobal by the expired owner = %v, want %v", err, storage.ErrNotOwner)
			}
		})
	}
}

// TestHotRowHandOver: globals take and release one hot row, many at a
// time. Whenever a registration succeeds, the row must be recorded as
// held by its global: a registration whose INSERT found the row taken,
// and whose check then found it already released, used to succeed
// without holding it, and another global wrote the row under it (the
// bank invariant on PostgreSQL caught it).
func TestHotRowHandOver(t *testing.T) {
	ctx := context.Background()
	accept := func(*storage.Global) error { return nil }
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			s := openMigrated(t, be.dialect, be.dsn(t))
			var wg sync.WaitGroup
			var held, bad atomic.Int64
			stop := time.Now().Add(2 * time.Second)
			for w := range 8 {
				wg.Go(func() {
					for i := 0; time.Now().Before(stop); i++ {
						xid := fmt.Sprintf("g%d-%d", w, i)
						g := &storage.Global{XID: xid, Status: xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN}
						b := &storage.Branch{XID: xid, Resource: "db", LockKeys: []string{"hot", xid}}
						_, err := s.Hold(ctx, b, func(ctx context.Context) (int64, error) {
							id, _, err := s.AddBranch(ctx, b, g, accept, storage.Durable)
							return id, err
						})
						if err != nil {
							continue // a conflict, most of the time
						}
						held.Add(1)
						locks, err := s.Locks(ctx, xid, 0)
						if err != nil {
							t.Error(err)
							return
						}
						if len(locks) != 2 {
							bad.Add(1)
							t.Errorf("%s registered, but holds %v (want hot and its own row)", xid, locks)
						}
						if err := s.Releasing(ctx, xid, func(ctx context.Context) ([]int64, bool, error) {
							return nil, true, s.FinishGlobal(ctx, xid, xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED, storage.Relaxed)
						}); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			t.Logf("%d registrations held the hot row, %d did not", held.Load(), bad.Load())
			if held.Load() == 0 {
				t.Error("no registration took the hot row")
			}
		})
	}
}

// TestDueGlobalsSkipsLiveOwners: a node's scan does not list the due
// globals that another live node owns, only its own, those nobody owns
// and those of a node whose lease ran out (or that joined again under a
// newer epoch).
func TestDueGlobalsSkipsLiveOwners(t *testing.T) {
	ctx := context.Background()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			a, b := twoNodes(t, be)
			if _, err := a.Join(ctx, "tc-a", "", time.Minute); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Join(ctx, "tc-b", "", time.Minute); err != nil {
				t.Fatal(err)
			}
			past := time.Now().Add(-time.Hour)
			decide := func(s *Store, xid string) {
				t.Helper()
				g := &storage.Global{XID: xid, Status: xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN, NextAt: past, Deadline: past}
				if err := s.CreateGlobal(ctx, g, storage.Durable); err != nil {
					t.Fatal(err)
				}
				if _, err := s.UpdateGlobal(ctx, xid, func(g *storage.Global) error {
					g.Status = xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTING
					return nil
				}, storage.Durable); err != nil {
					t.Fatal(err)
				}
			}
			decide(a, "xa")
			decide(b, "xb")
			due := func(s *Store) []string {
				t.Helper()
				gs, err := s.DueGlobals(ctx, time.Now(), 0)
				if err != nil {
					t.Fatal(err)
				}
				var xids []string
				for _, g := range gs {
					xids = append(xids, g.XID)
				}
				return xids
			}
			if got := due(a); fmt.Sprint(got) != "[xa]" {
				t.Errorf("a's due globals = %v, want [xa] (xb is live b's)", got)
			}
			if got := due(b); fmt.Sprint(got) != "[xb]" {
				t.Errorf("b's due globals = %v, want [xb]", got)
			}
			// b leaves: its global is due for a, which may claim it.
			if err := b.Leave(ctx); err != nil {
				t.Fatal(err)
			}
			if got := due(a); fmt.Sprint(got) != "[xa xb]" {
				t.Errorf("a's due globals after b left = %v, want [xa xb]", got)
			}
		})
	}
}
