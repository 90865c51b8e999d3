package locktable

import (
	"errors"
	"reflect"
	"runtime"
	"strconv"
	"testing"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/storage"
)

func mustReserve(t *testing.T, tb *Table, xid, resource string, keys ...string) *Reservation {
	t.Helper()
	r, err := tb.Reserve(xid, resource, keys)
	if err != nil {
		t.Fatalf("Reserve(%s, %q) = %v", xid, keys, err)
	}
	return r
}

// waitForWaiter returns once a Reserve call is blocked on a reservation.
func waitForWaiter(tb *Table) {
	for {
		tb.mu.RLock()
		n := tb.waiting
		tb.mu.RUnlock()
		if n > 0 {
			return
		}
		runtime.Gosched()
	}
}

// A Reserve that wants a key another global has reserved waits for that
// reservation and then sees its outcome: the key taken, or free again.
func TestReserveWaitsForReservation(t *testing.T) {
	for _, commit := range []bool{true, false} {
		tb := New()
		first := mustReserve(t, tb, "x1", "r", "k")
		if err := tb.Check("x3", "r", []string{"k"}); err == nil {
			t.Errorf("Check(k) while reserved = nil, want a conflict")
		}
		type result struct {
			r   *Reservation
			err error
		}
		got := make(chan result)
		go func() {
			r, err := tb.Reserve("x2", "r", []string{"free", "k"})
			got <- result{r, err}
		}()
		waitForWaiter(tb)
		if commit {
			first.Commit(1)
		} else {
			first.Cancel()
		}
		res := <-got
		var lc *protocol.LockConflictError
		switch {
		case commit && (!errors.As(res.err, &lc) || lc.Holder != "x1" || lc.Key != "k"):
			t.Errorf("Reserve(k) after the reservation committed = %v, want a conflict on k held by x1", res.err)
		case !commit && res.err != nil:
			t.Errorf("Reserve(k) after the reservation was cancelled = %v, want nil", res.err)
		}
		if res.r != nil {
			res.r.Commit(1)
		}
		want := []storage.Lock{{Resource: "r", Key: "k", XID: "x1", BranchID: 1}}
		if !commit {
			want = []storage.Lock{
				{Resource: "r", Key: "free", XID: "x2", BranchID: 1},
				{Resource: "r", Key: "k", XID: "x2", BranchID: 1},
			}
		}
		if got := tb.Locks("", 0); !reflect.DeepEqual(got, want) {
			t.Errorf("commit=%v: Locks = %+v, want %+v", commit, got, want)
		}
	}
}

// A held key is a conflict at once, even if another key of the request is
// only reserved.
func TestReserveHeldBeatsReserved(t *testing.T) {
	tb := New()
	mustReserve(t, tb, "x1", "r", "held").Commit(1)
	pending := mustReserve(t, tb, "x2", "r", "reserved")
	defer pending.Cancel()
	_, err := tb.Reserve("x3", "r", []string{"reserved", "held"})
	var lc *protocol.LockConflictError
	if !errors.As(err, &lc) || lc.Key != "held" || lc.Holder != "x1" {
		t.Errorf("Reserve(reserved, held) = %v, want a conflict on held", err)
	}
}

func TestReservationEndsOnce(t *testing.T) {
	tb := New()
	r := mustReserve(t, tb, "x1", "r", "k")
	r.Commit(1)
	r.Cancel() // no effect after Commit
	r.Commit(2)
	if got, want := tb.Locks("x1", 0), []storage.Lock{{Resource: "r", Key: "k", XID: "x1", BranchID: 1}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Locks(x1) = %+v, want %+v", got, want)
	}
	// The stripe was released: the global can reserve again.
	mustReserve(t, tb, "x1", "r", "k2").Cancel()
}

func TestAdd(t *testing.T) {
	tb := New()
	if err := tb.Add("x1", 1, "r", []string{"a", "b"}); err != nil {
		t.Fatalf("Add = %v", err)
	}
	if err := tb.Add("x1", 2, "r", []string{"b", "c"}); err != nil {
		t.Fatalf("Add(own key) = %v", err)
	}
	err := tb.Add("x2", 1, "r", []string{"d", "c"})
	var lc *protocol.LockConflictError
	if !errors.As(err, &lc) || lc.Key != "c" || lc.Holder != "x1" {
		t.Errorf("Add(key of x1) = %v, want a conflict on c held by x1", err)
	}
	want := []storage.Lock{
		{Resource: "r", Key: "a", XID: "x1", BranchID: 1},
		{Resource: "r", Key: "b", XID: "x1", BranchID: 1},
		{Resource: "r", Key: "c", XID: "x1", BranchID: 2},
		{Resource: "r", Key: "d", XID: "x2", BranchID: 1},
	}
	if got := tb.Locks("", 0); !reflect.DeepEqual(got, want) {
		t.Errorf("Locks = %+v, want %+v", got, want)
	}
	tb.Release("x1", 1)
	want = []storage.Lock{
		{Resource: "r", Key: "b", XID: "x1", BranchID: 2},
		{Resource: "r", Key: "c", XID: "x1", BranchID: 2},
	}
	if got := tb.Locks("x1", 0); !reflect.DeepEqual(got, want) {
		t.Errorf("Locks(x1) after releasing branch 1 = %+v, want %+v", got, want)
	}
	tb.Release("x1")
	tb.Release("x2")
	if n := tb.Len(); n != 0 {
		t.Errorf("Len after releasing everything = %d, want 0", n)
	}
	if len(tb.globals) != 0 {
		t.Errorf("globals after releasing everything = %v, want none", tb.globals)
	}
}

// BenchmarkReserveManyKeys registers, hands over and releases branches of
// 10,000 keys (the TC's MaxLockKeys), half of them listed twice.
func BenchmarkReserveManyKeys(b *testing.B) {
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = "orders:" + strconv.Itoa(i%5000+b.N)
	}
	for range b.N {
		tb := New()
		mustReserveB(b, tb, "x1", keys).Commit(1)
		mustReserveB(b, tb, "x1", keys).Commit(2)
		tb.Release("x1", 1) // every row passes to branch 2
		if n := len(tb.Locks("x1", 0)); n != 5000 {
			b.Fatalf("Locks(x1) = %d rows, want 5000", n)
		}
		tb.Release("x1")
	}
}

func mustReserveB(b *testing.B, tb *Table, xid string, keys []string) *Reservation {
	r, err := tb.Reserve(xid, "r", keys)
	if err != nil {
		b.Fatal(err)
	}
	return r
}
