package embedded

import (
	"container/heap"
	"sync"
	"time"
)

// dueIndex is the in-memory index of unfinished globals by NextAt, which
// DueGlobals reads. It replaces an on-disk index: the TC scans for due work
// several times a second, and every finished global would leave a deleted
// key in an on-disk index that each scan has to step over until compaction,
// so the scan's cost grew with the throughput. It is rebuilt from the
// globals at Open.
//
// Changes are applied after their transaction commits, so two transactions
// on one global could apply out of order. Each change carries its
// transaction's read timestamp: every transaction that writes a global
// reads its key first, so of two that both committed the later one began
// after the earlier one's commit and has the higher read timestamp; an
// older change never overwrites a newer one. A removed global keeps a
// "gone" entry for a while, so a late older change cannot bring it back.
type dueIndex struct {
	mu struct {
		sync.Mutex
		at     map[string]dueState
		heap   dueHeap // entries whose at no longer matches are stale
		purged time.Time
	}
}

type dueState struct {
	at   time.Time // zero: not due (gone, or no NextAt)
	ver  uint64
	gone time.Time // when it was removed, for purging
}

type dueEntry struct {
	at  time.Time
	xid string
}

// goneRetention is how long a removed global's entry guards against a late
// older change: far longer than the moment between a commit and its apply.
const goneRetention = time.Minute

func newDueIndex() *dueIndex {
	d := &dueIndex{}
	d.mu.at = map[string]dueState{}
	return d
}

// set records that xid's NextAt is at (zero: not due) as of version ver.
// removed marks a global that no longer exists.
func (d *dueIndex) set(xid string, at time.Time, ver uint64, removed bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if cur, ok := d.mu.at[xid]; ok && cur.ver > ver {
		return
	}
	st := dueState{at: at, ver: ver}
	if removed {
		st.at, st.gone = time.Time{}, time.Now()
	}
	d.mu.at[xid] = st
	if !st.at.IsZero() {
		heap.Push(&d.mu.heap, dueEntry{at: st.at, xid: xid})
	}
	if len(d.mu.heap) > 2*len(d.mu.at)+1024 {
		d.rebuildLocked()
	}
}

// rebuildLocked drops stale heap entries and expired gone entries.
func (d *dueIndex) rebuildLocked() {
	now := time.Now()
	h := make(dueHeap, 0, len(d.mu.at))
	for xid, st := range d.mu.at {
		switch {
		case !st.gone.IsZero() && now.Sub(st.gone) > goneRetention:
			delete(d.mu.at, xid)
		case !st.at.IsZero():
			h = append(h, dueEntry{at: st.at, xid: xid})
		}
	}
	heap.Init(&h)
	d.mu.heap = h
}

// due returns up to limit (<= 0: all) XIDs whose NextAt is not after t,
// earliest first.
func (d *dueIndex) due(t time.Time, limit int) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []dueEntry
	for len(d.mu.heap) > 0 && (limit <= 0 || len(out) < limit) {
		top := d.mu.heap[0]
		if top.at.After(t) {
			break
		}
		heap.Pop(&d.mu.heap)
		if st, ok := d.mu.at[top.xid]; !ok || !st.at.Equal(top.at) {
			continue // stale
		}
		if n := len(out); n > 0 && out[n-1].xid == top.xid {
			continue // a duplicate of a live entry
		}
		out = append(out, top)
	}
	xids := make([]string, len(out))
	for i, e := range out {
		xids[i] = e.xid
		heap.Push(&d.mu.heap, e) // still due until its global changes
	}
	if now := time.Now(); now.Sub(d.mu.purged) > goneRetention {
		d.mu.purged = now
		d.rebuildLocked()
	}
	return xids
}

type dueHeap []dueEntry

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].xid < h[j].xid
}
func (h dueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)   { *h = append(*h, x.(dueEntry)) }
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
