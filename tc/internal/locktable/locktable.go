// Package locktable is the global row-lock table that the stores keep in
// memory. It is a view of durable state, not state of its own: a global
// transaction holds a row (resource, key) while one of its branches that
// lists the key is not released (storage.Branch.LocksReleased) and the
// global itself is not released (storage.Global.LocksReleased). A store
// rebuilds the table from its branches when it opens (Add) and keeps it in
// step with every write that changes what is held (Reserve, Release).
//
// A row is listed under the lowest-numbered unreleased branch of its global
// that lists it, so releasing a later branch never frees a row an earlier
// one still needs (rollback runs in reverse registration order, I9), and
// releasing an earlier one hands the row on to the next branch that lists
// it instead of freeing it.
//
// Registration is two-phase. Reserve takes the free keys, all or nothing,
// before the branch is written; Commit attaches them to the stored branch,
// Cancel gives them back. A registration that wants a key another global
// has reserved waits until that reservation ends, so it sees the outcome
// (the key held, or free again) and never a conflict with a registration
// that did not happen. A reservation holds its global's stripe, so the
// reservations and releases of one global happen one at a time and in the
// order their writes committed.
package locktable

import (
	"cmp"
	"slices"
	"strings"
	"sync"

	"github.com/xact-io/xact/internal/stripe"
	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/storage"
)

// stripes is the number of per-global mutexes (by XID hash).
const stripes = 1024

type row struct{ resource, key string }

// holder is who holds a row. branch is 0 while the row is reserved by a
// registration that has not committed.
type holder struct {
	xid    string
	branch int64
}

// branch is an unreleased branch that lists lock keys.
type branch struct {
	id       int64
	resource string
	keys     []string
}

// Table is the lock table. The zero value is not usable; call New.
type Table struct {
	stripes *stripe.Mutexes // per global, by XID

	mu      sync.RWMutex
	ended   *sync.Cond // on mu (write lock): a reservation that took keys ended
	waiting int        // Reserve calls waiting on ended (for tests)
	rows    map[row]holder
	globals map[string][]branch // xid -> its unreleased branches with keys, by id
}

// New returns an empty table.
func New() *Table {
	t := &Table{stripes: stripe.New(stripes), rows: map[row]holder{}, globals: map[string][]branch{}}
	t.ended = sync.NewCond(&t.mu)
	return t
}

func (t *Table) stripe(xid string) *sync.Mutex { return t.stripes.For(xid) }

// Reservation is a registration's hold on its keys between Reserve and
// Commit or Cancel. It holds its global's stripe: finish it promptly.
type Reservation struct {
	t        *Table
	stripe   *sync.Mutex
	xid      string
	resource string
	keys     []string
	taken    []row
}

// Reserve takes, for xid, every key of resource that xid does not hold
// yet, or none: if another global holds one of them it returns a
// *protocol.LockConflictError naming the first such key. Keys xid holds
// already are not conflicts; they stay with the branch that holds them.
// While another global has one of the keys reserved (and none is held),
// Reserve waits for that reservation to end. On success the caller must
// call Commit or Cancel.
func (t *Table) Reserve(xid, resource string, keys []string) (*Reservation, error) {
	st := t.stripe(xid)
	st.Lock()
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		reserved := false
		for _, k := range keys {
			h, held := t.rows[row{resource, k}]
			switch {
			case !held || h.xid == xid:
			case h.branch != 0:
				st.Unlock()
				return nil, &protocol.LockConflictError{Resource: resource, Key: k, Holder: h.xid}
			default:
				reserved = true
			}
		}
		if !reserved {
			break
		}
		t.waiting++
		t.ended.Wait()
		t.waiting--
	}
	var take []row
	for _, k := range keys {
		r := row{resource, k}
		if _, held := t.rows[r]; !held { // a repeated key is held by now
			t.rows[r] = holder{xid: xid}
			take = append(take, r)
		}
	}
	return &Reservation{t: t, stripe: st, xid: xid, resource: resource, keys: slices.Clone(keys), taken: take}, nil
}

// Commit records that the branch was stored with id: the reserved rows
// are held by it, and it holds whatever of its keys are held later.
// Calling Commit or Cancel again does nothing.
func (r *Reservation) Commit(id int64) {
	if r.stripe == nil {
		return
	}
	t := r.t
	t.mu.Lock()
	t.addBranchLocked(r.xid, branch{id: id, resource: r.resource, keys: r.keys})
	for _, rw := range r.taken {
		if h := t.rows[rw]; h.xid == r.xid && h.branch == 0 {
			t.rows[rw] = holder{xid: r.xid, branch: id}
		}
	}
	r.done()
}

// Cancel gives the reserved rows back: the branch was not stored.
func (r *Reservation) Cancel() {
	if r.stripe == nil {
		return
	}
	t := r.t
	t.mu.Lock()
	for _, rw := range r.taken {
		if h := t.rows[rw]; h.xid == r.xid && h.branch == 0 {
			delete(t.rows, rw)
		}
	}
	r.done()
}

// done ends the reservation; t.mu is held and is unlocked here.
func (r *Reservation) done() {
	if len(r.taken) > 0 {
		r.t.ended.Broadcast()
	}
	r.t.mu.Unlock()
	r.stripe.Unlock()
	r.stripe, r.taken = nil, nil
}

// addBranchLocked inserts b into xid's branches, keeping them by id.
func (t *Table) addBranchLocked(xid string, b branch) {
	bs := t.globals[xid]
	i, _ := slices.BinarySearchFunc(bs, b.id, func(e branch, id int64) int { return cmp.Compare(e.id, id) })
	t.globals[xid] = slices.Insert(bs, i, b)
}

// Add records the locks of a stored, unreleased branch, as a store does
// when it rebuilds the table. Branches of one global must be added in id
// order. A key another global holds is skipped, and the first such key is
// returned as a *protocol.LockConflictError (the stored state contradicts
// I5; the caller reports it).
func (t *Table) Add(xid string, id int64, resource string, keys []string) error {
	st := t.stripe(xid)
	st.Lock()
	defer st.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	var conflict error
	for _, k := range keys {
		r := row{resource, k}
		h, held := t.rows[r]
		switch {
		case !held:
			t.rows[r] = holder{xid: xid, branch: id}
		case h.xid != xid && conflict == nil:
			conflict = &protocol.LockConflictError{Resource: resource, Key: k, Holder: h.xid}
		}
	}
	t.addBranchLocked(xid, branch{id: id, resource: resource, keys: slices.Clone(keys)})
	return conflict
}

// Release frees the locks of the given branches of xid, or all of xid's
// locks when no id is given. A row that a remaining branch of xid also
// lists passes to the lowest such branch. Unknown globals and branches are
// ignored.
func (t *Table) Release(xid string, ids ...int64) {
	st := t.stripe(xid)
	st.Lock()
	defer st.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	bs, ok := t.globals[xid]
	if !ok {
		return
	}
	var gone, kept []branch
	for _, b := range bs {
		if len(ids) == 0 || slices.Contains(ids, b.id) {
			gone = append(gone, b)
		} else {
			kept = append(kept, b)
		}
	}
	var next map[row]int64 // the lowest kept branch listing each row
	for _, b := range gone {
		for _, k := range b.keys {
			r := row{b.resource, k}
			if h := t.rows[r]; h.xid != xid || h.branch != b.id {
				continue // held by an earlier branch, or a repeated key
			}
			if next == nil && len(kept) > 0 {
				next = firstListing(kept)
			}
			if id, ok := next[r]; ok {
				t.rows[r] = holder{xid: xid, branch: id}
			} else {
				delete(t.rows, r)
			}
		}
	}
	if len(kept) == 0 {
		delete(t.globals, xid)
	} else {
		t.globals[xid] = kept
	}
}

// firstListing maps every row the branches bs (in id order) list to the
// first of them that lists it.
func firstListing(bs []branch) map[row]int64 {
	m := map[row]int64{}
	for _, b := range bs {
		for _, k := range b.keys {
			if _, ok := m[row{b.resource, k}]; !ok {
				m[row{b.resource, k}] = b.id
			}
		}
	}
	return m
}

// Check returns nil if no key of resource is held or reserved by a global
// other than xid, or a *protocol.LockConflictError for the first one that
// is. (A reserved key counts as held: it is, if its registration
// succeeds.)
func (t *Table) Check(xid, resource string, keys []string) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, k := range keys {
		if h, held := t.rows[row{resource, k}]; held && h.xid != xid {
			return &protocol.LockConflictError{Resource: resource, Key: k, Holder: h.xid}
		}
	}
	return nil
}

// Locks lists held locks (not reservations), at most limit (<= 0: no
// limit): all of them ordered by resource and key, or xid's ordered by
// branch id, resource and key.
func (t *Table) Locks(xid string, limit int) []storage.Lock {
	t.mu.RLock()
	var out []storage.Lock
	if xid == "" {
		out = make([]storage.Lock, 0, len(t.rows))
		for r, h := range t.rows {
			if h.branch != 0 {
				out = append(out, storage.Lock{Resource: r.resource, Key: r.key, XID: h.xid, BranchID: h.branch})
			}
		}
	} else {
		listed := map[row]bool{}
		for _, b := range t.globals[xid] {
			for _, k := range b.keys {
				r := row{b.resource, k}
				if h := t.rows[r]; h.xid == xid && h.branch == b.id && !listed[r] {
					listed[r] = true
					out = append(out, storage.Lock{Resource: r.resource, Key: r.key, XID: xid, BranchID: b.id})
				}
			}
		}
	}
	t.mu.RUnlock()
	slices.SortFunc(out, func(a, b storage.Lock) int {
		byBranch := 0
		if xid != "" {
			byBranch = cmp.Compare(a.BranchID, b.BranchID)
		}
		return cmp.Or(byBranch, strings.Compare(a.Resource, b.Resource), strings.Compare(a.Key, b.Key))
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Len reports how many rows are held or reserved.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.rows)
}
