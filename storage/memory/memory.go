// Package memory is an in-memory storage.Store for tests and for running a
// coordinator without durability. It keeps the same contract as every other
// store (see storage/storetest); nothing survives the process.
//
//	s := memory.New()
//	defer s.Close()
//	err := s.CreateGlobal(ctx, &storage.Global{XID: "x1", Status: xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN})
package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/storage"
)

// DefaultTombstoneRetention is how long a finished global's tombstone stays
// visible to GetGlobal unless WithTombstoneRetention says otherwise.
const DefaultTombstoneRetention = 10 * time.Minute

// Option configures a Store.
type Option func(*Store)

// WithTombstoneRetention sets how long tombstones of finished globals are
// kept. d <= 0 keeps the default.
func WithTombstoneRetention(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.retention = d
		}
	}
}

// Store is an in-memory storage.Store. All state is guarded by one mutex;
// every object that goes in or out is copied.
type Store struct {
	retention time.Duration
	now       func() time.Time // tests replace it

	mu struct {
		sync.Mutex
		closed   bool
		globals  map[string]*storage.Global
		branches map[string][]*storage.Branch // in registration order
		// Tombstones expire in the order they were written (retention is
		// fixed), so a FIFO finds the expired ones without a scan.
		tombs     map[string]tombstone
		tombQueue []tombRef
	}
}

var _ storage.Store = (*Store)(nil)

type tombstone struct {
	g       *storage.Global
	expires time.Time
}

type tombRef struct {
	xid     string
	expires time.Time
}

// New returns an empty store.
func New(opts ...Option) *Store {
	s := &Store{retention: DefaultTombstoneRetention, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	s.mu.globals = map[string]*storage.Global{}
	s.mu.branches = map[string][]*storage.Branch{}
	s.mu.tombs = map[string]tombstone{}
	return s
}

// lock takes the mutex after checking ctx, and refuses a closed store.
// On success the caller must unlock s.mu.
func (s *Store) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return storage.ErrClosed
	}
	return nil
}

// tombLocked returns xid's tombstone if it has not expired, after purging
// the expired ones.
func (s *Store) tombLocked(xid string) (*storage.Global, bool) {
	now := s.now()
	for len(s.mu.tombQueue) > 0 && !now.Before(s.mu.tombQueue[0].expires) {
		ref := s.mu.tombQueue[0]
		s.mu.tombQueue[0] = tombRef{}
		s.mu.tombQueue = s.mu.tombQueue[1:]
		// The same XID may have been finished again later; only the entry
		// this reference was queued for goes.
		if t, ok := s.mu.tombs[ref.xid]; ok && t.expires.Equal(ref.expires) {
			delete(s.mu.tombs, ref.xid)
		}
	}
	t, ok := s.mu.tombs[xid]
	if !ok || !now.Before(t.expires) {
		return nil, false
	}
	return t.g, true
}

// CreateGlobal stores a copy of g; storage.ErrExists if g.XID is stored or
// has a retained tombstone.
func (s *Store) CreateGlobal(ctx context.Context, g *storage.Global, _ storage.Durability) error {
	if g.XID == "" {
		return fmt.Errorf("storage: create global: empty XID: %w", protocol.ErrInvalidArgument)
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.mu.globals[g.XID]; ok {
		return fmt.Errorf("storage: create global %s: %w", g.XID, storage.ErrExists)
	}
	if _, ok := s.tombLocked(g.XID); ok {
		return fmt.Errorf("storage: create global %s (finished): %w", g.XID, storage.ErrExists)
	}
	c := g.Clone()
	c.Finished = false
	s.mu.globals[g.XID] = c
	return nil
}

// GetGlobal returns a copy of the global or of its tombstone.
func (s *Store) GetGlobal(ctx context.Context, xid string) (*storage.Global, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if g, ok := s.mu.globals[xid]; ok {
		return g.Clone(), nil
	}
	if g, ok := s.tombLocked(xid); ok {
		return g.Clone(), nil
	}
	return nil, fmt.Errorf("storage: get global %s: %w", xid, storage.ErrNotFound)
}

// UpdateGlobal calls fn on a copy of the global and stores the result. fn
// runs under the store's mutex, so it must not call the store. Changes fn
// makes to XID, BranchSeq and Finished are ignored.
func (s *Store) UpdateGlobal(ctx context.Context, xid string, fn func(g *storage.Global) error, _ storage.Durability) (*storage.Global, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	old, ok := s.mu.globals[xid]
	if !ok {
		return nil, fmt.Errorf("storage: update global %s: %w", xid, storage.ErrNotFound)
	}
	c := old.Clone()
	if err := fn(c); err != nil {
		return nil, err
	}
	c.XID, c.BranchSeq, c.Finished = old.XID, old.BranchSeq, false
	s.mu.globals[xid] = c.Clone()
	return c, nil
}

// FinishGlobal replaces the global by a tombstone with status final and
// drops its branches. Finishing a tombstone is a no-op.
func (s *Store) FinishGlobal(ctx context.Context, xid string, final storage.Status, _ storage.Durability) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	g, ok := s.mu.globals[xid]
	if !ok {
		if _, ok := s.tombLocked(xid); ok {
			return nil
		}
		return fmt.Errorf("storage: finish global %s: %w", xid, storage.ErrNotFound)
	}
	delete(s.mu.globals, xid)
	delete(s.mu.branches, xid)
	t := g.Clone()
	t.Status = final
	t.Finished = true
	t.NextAt = time.Time{}
	expires := s.now().Add(s.retention)
	s.mu.tombs[xid] = tombstone{g: t, expires: expires}
	s.mu.tombQueue = append(s.mu.tombQueue, tombRef{xid: xid, expires: expires})
	return nil
}

// ListGlobals returns copies of the unfinished globals matching f, ordered
// by XID.
func (s *Store) ListGlobals(ctx context.Context, f storage.Filter) ([]*storage.Global, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []*storage.Global
	for _, g := range s.mu.globals {
		if f.ParkedOnly && !g.Parked {
			continue
		}
		if len(f.Statuses) > 0 && !slices.Contains(f.Statuses, g.Status) {
			continue
		}
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b *storage.Global) int { return strings.Compare(a.XID, b.XID) })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	for i, g := range out {
		out[i] = g.Clone()
	}
	return out, nil
}

// DueGlobals returns copies of the globals whose NextAt is set and not after
// t, earliest first (ties by XID), at most limit (<= 0: no limit).
func (s *Store) DueGlobals(ctx context.Context, t time.Time, limit int) ([]*storage.Global, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []*storage.Global
	for _, g := range s.mu.globals {
		if !g.NextAt.IsZero() && !g.NextAt.After(t) {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b *storage.Global) int {
		return cmp.Or(a.NextAt.Compare(b.NextAt), strings.Compare(a.XID, b.XID))
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	for i, g := range out {
		out[i] = g.Clone()
	}
	return out, nil
}

// AddBranch calls admit on the global (or its tombstone, or create),
// assigns b.ID and stores copies of b and of the global. admit runs under
// the store's mutex, so it must not call the store.
func (s *Store) AddBranch(ctx context.Context, b *storage.Branch, create *storage.Global, admit storage.Admit, _ storage.Durability) (int64, bool, error) {
	if create != nil && (create.XID == "" || create.XID != b.XID) {
		return 0, false, fmt.Errorf("storage: create %q and add a branch of %q: %w", create.XID, b.XID, protocol.ErrInvalidArgument)
	}
	if err := s.lock(ctx); err != nil {
		return 0, false, err
	}
	defer s.mu.Unlock()
	stored, ok := s.mu.globals[b.XID]
	var g *storage.Global
	switch tomb, finished := s.tombLocked(b.XID); {
	case ok:
		g = stored.Clone()
	case finished:
		g = tomb.Clone()
	case create != nil:
		g = create.Clone()
		g.Finished, g.BranchSeq = false, 0
	default:
		return 0, false, fmt.Errorf("storage: add a branch of %s: %w", b.XID, storage.ErrNotFound)
	}
	if err := admit(g.Clone()); err != nil {
		return 0, false, err
	}
	if g.Finished {
		// The rule answers for a finished global (its admit refuses it);
		// no branch is ever stored with a tombstone.
		return 0, false, fmt.Errorf("storage: add a branch of %s: it is finished: %w", b.XID, protocol.ErrNotBegin)
	}
	g.BranchSeq++
	c := b.Clone()
	c.ID = g.BranchSeq
	s.mu.globals[b.XID] = g
	s.mu.branches[b.XID] = append(s.mu.branches[b.XID], c)
	b.ID = c.ID
	return c.ID, !ok, nil
}

// UpdateBranch calls fn on a copy of the branch and stores the result. fn
// runs under the store's mutex. Changes fn makes to XID and ID are ignored.
func (s *Store) UpdateBranch(ctx context.Context, xid string, id int64, fn func(b *storage.Branch) error, _ storage.Durability) (*storage.Branch, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	bs := s.mu.branches[xid]
	i := slices.IndexFunc(bs, func(b *storage.Branch) bool { return b.ID == id })
	if i < 0 {
		return nil, fmt.Errorf("storage: update branch %s/%d: %w", xid, id, storage.ErrBranchNotFound)
	}
	old := bs[i]
	c := old.Clone()
	if err := fn(c); err != nil {
		return nil, err
	}
	c.XID, c.ID = xid, id
	bs[i] = c.Clone()
	return c, nil
}

// Branches returns copies of the global's branches in registration order.
func (s *Store) Branches(ctx context.Context, xid string) ([]*storage.Branch, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	bs := s.mu.branches[xid]
	out := make([]*storage.Branch, len(bs))
	for i, b := range bs {
		out[i] = b.Clone()
	}
	return out, nil
}

// Close makes every later call fail with storage.ErrClosed and drops the
// state. Calling it again is a no-op.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil
	}
	s.mu.closed = true
	s.mu.globals, s.mu.branches, s.mu.tombs, s.mu.tombQueue = nil, nil, nil, nil
	return nil
}
