package storetest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol"
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

func mustCreate(t testing.TB, s storage.Store, g *storage.Global) {
	t.Helper()
	if err := s.CreateGlobal(context.Background(), g); err != nil {
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

func mustRegister(t testing.TB, s storage.Store, b *storage.Branch) int64 {
	t.Helper()
	id, err := s.RegisterBranch(context.Background(), b, base)
	if err != nil {
		t.Fatalf("RegisterBranch(%q, %q, %q) = %v, want nil", b.XID, b.Resource, b.LockKeys, err)
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

func mustLocks(t testing.TB, s storage.Store, xid string, limit int) []storage.Lock {
	t.Helper()
	ls, err := s.Locks(context.Background(), xid, limit)
	if err != nil {
		t.Fatalf("Locks(%q, %d) = %v, want nil", xid, limit, err)
	}
	return ls
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

func sortLocks(ls []storage.Lock) []storage.Lock {
	out := slices.Clone(ls)
	slices.SortFunc(out, func(a, b storage.Lock) int {
		if c := strings.Compare(a.Resource, b.Resource); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out
}

func checkLocks(t testing.TB, what string, got, want []storage.Lock) {
	t.Helper()
	g, w := sortLocks(got), sortLocks(want)
	if len(g) == 0 && len(w) == 0 {
		return
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %+v, want %+v", what, g, w)
	}
}

func checkConflict(t testing.TB, what string, err error, want *protocol.LockConflictError) {
	t.Helper()
	var lc *protocol.LockConflictError
	if !errors.As(err, &lc) {
		t.Errorf("%s = %v, want *protocol.LockConflictError %+v", what, err, want)
		return
	}
	if !errors.Is(err, protocol.ErrLockConflict) {
		t.Errorf("errors.Is(%s error, protocol.ErrLockConflict) = false, want true", what)
	}
	if *lc != *want {
		t.Errorf("%s conflict = %+v, want %+v", what, *lc, *want)
	}
}
