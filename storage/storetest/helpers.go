package storetest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/xact-io/xact/storage"
)

// Helpers of the suite: fixtures, must-calls, normalizing comparisons.

// newGlobal returns a global in Begin that began at base.
func newGlobal(xid string) *storage.Global {
	return &storage.Global{
		XID:       xid,
		Name:      "order-" + xid,
		Status:    begin,
		Timeout:   testTimeout,
		BeganAt:   base,
		Deadline:  base.Add(testTimeout),
		NextAt:    base.Add(testTimeout),
		UpdatedAt: base,
	}
}

func newBranch(xid, resource string, keys ...string) *storage.Branch {
	return &storage.Branch{
		XID:          xid,
		Resource:     resource,
		Type:         branchAT,
		Status:       registered,
		LockKeys:     keys,
		AppData:      []byte("app-data"),
		RegisteredAt: base.Add(time.Second),
	}
}

// accept is an admit that admits every global.
func accept(*storage.Global) error { return nil }

func mustCreate(t testing.TB, s storage.Store, g *storage.Global) {
	t.Helper()
	if err := s.CreateGlobal(context.Background(), g, storage.Durable); err != nil {
		t.Fatalf("CreateGlobal(%q) = %v, want nil", g.XID, err)
	}
}

func mustGet(t testing.TB, s storage.Store, xid string) *storage.Global {
	t.Helper()
	g, err := s.GetGlobal(context.Background(), xid)
	if err != nil {
		t.Fatalf("GetGlobal(%q) = %v, want nil", xid, err)
	}
	return g
}

// mustAdd adds b to its stored global, admitted whatever the global is.
func mustAdd(t testing.TB, s storage.Store, b *storage.Branch) int64 {
	t.Helper()
	id, created, err := s.AddBranch(context.Background(), b, nil, accept, storage.Durable)
	if err != nil || created {
		t.Fatalf("AddBranch(%q, %q, %q) = %d, %v, %v; want nil, not created", b.XID, b.Resource, b.LockKeys, id, created, err)
	}
	return id
}

func mustBranches(t testing.TB, s storage.Store, xid string) []*storage.Branch {
	t.Helper()
	bs, err := s.Branches(context.Background(), xid)
	if err != nil {
		t.Fatalf("Branches(%q) = %v, want nil", xid, err)
	}
	return bs
}

func mustDue(t testing.TB, s storage.Store, at time.Time) []string {
	t.Helper()
	gs, err := s.DueGlobals(context.Background(), at, 0)
	if err != nil {
		t.Fatalf("DueGlobals(%v) = %v, want nil", at, err)
	}
	return xids(gs)
}

// normTime drops location and monotonic reading so that reflect.DeepEqual
// compares instants.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.Unix(t.Unix(), int64(t.Nanosecond())).UTC()
}

func normGlobal(g *storage.Global) *storage.Global {
	if g == nil {
		return nil
	}
	c := g.Clone()
	c.BeganAt = normTime(c.BeganAt)
	c.Deadline = normTime(c.Deadline)
	c.NextAt = normTime(c.NextAt)
	c.UpdatedAt = normTime(c.UpdatedAt)
	if len(c.History) == 0 {
		c.History = nil
	}
	for i := range c.History {
		c.History[i].At = normTime(c.History[i].At)
	}
	return c
}

func normBranch(b *storage.Branch) *storage.Branch {
	if b == nil {
		return nil
	}
	c := b.Clone()
	c.RegisteredAt = normTime(c.RegisteredAt)
	if len(c.LockKeys) == 0 {
		c.LockKeys = nil
	}
	if len(c.AppData) == 0 {
		c.AppData = nil
	}
	return c
}

func checkGlobal(t testing.TB, what string, got, want *storage.Global) {
	t.Helper()
	if g, w := normGlobal(got), normGlobal(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %+v, want %+v", what, g, w)
	}
}

func checkBranch(t testing.TB, what string, got, want *storage.Branch) {
	t.Helper()
	if g, w := normBranch(got), normBranch(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %+v, want %+v", what, g, w)
	}
}

// checkBranches compares a global's branches with want, in order.
func checkBranches(t testing.TB, what string, got, want []*storage.Branch) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s = %d branches, want %d", what, len(got), len(want))
		return
	}
	for i := range want {
		checkBranch(t, fmt.Sprintf("%s[%d]", what, i), got[i], want[i])
	}
}

func xids(gs []*storage.Global) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.XID
	}
	return out
}

func sortedXIDs(gs []*storage.Global) []string {
	out := xids(gs)
	slices.Sort(out)
	return out
}
