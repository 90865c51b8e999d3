package embedded

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Group commit.
//
// Badger is opened with SyncWrites(false): a committed transaction is in the
// memtable and in its write-ahead log (an mmap'd file), but not on disk. A
// mutating method commits its own transaction and then calls
// committer.wait, which returns once an fsync that started after the commit
// has finished. One goroutine (run) does the syncing: whenever there are
// waiters it takes all of them as one generation, syncs once, and releases
// them together. Writers that arrive while a sync is running form the next
// generation, so under load each sync covers every write that committed
// during the previous one — the cost of an fsync is shared by all
// concurrent callers.
//
// Invariant: a generation is taken (run swaps committer.mu.next) only after
// each of its waiters registered, and a waiter registers only after its
// transaction committed; so every write of a generation is in the log
// before that generation's sync starts.
//
// A failed sync is sticky: after an fsync error the kernel may have dropped
// the dirty pages, so nothing written since the last good sync can be
// trusted to be durable, and every later mutation fails with the same
// error. The store must be closed and reopened (Badger replays its logs).
type committer struct {
	sync    func() error // syncs everything committed so far
	release func()       // called once the goroutine is done syncing
	kick    chan struct{}
	quit    chan struct{}
	done    chan struct{}

	mu struct {
		sync.Mutex
		next *generation // waiters for the next sync; nil if none
		err  error       // sticky sync failure
	}
}

// generation is the set of waiters one sync releases.
type generation struct {
	done chan struct{}
	err  error
}

func newCommitter(syncFn func() error, release func()) *committer {
	c := &committer{
		sync:    syncFn,
		release: release,
		kick:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go c.run()
	return c
}

// failed returns the sticky sync error, if any.
func (c *committer) failed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.err
}

// wait returns once everything committed before the call is durable, or the
// sync error. It does not watch a context: once a change is applied the
// caller should learn whether it is durable, and a sync is short.
func (c *committer) wait() error {
	c.mu.Lock()
	if err := c.mu.err; err != nil {
		c.mu.Unlock()
		return err
	}
	g := c.mu.next
	if g == nil {
		g = &generation{done: make(chan struct{})}
		c.mu.next = g
	}
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default: // a kick is pending; it will take g
	}
	<-g.done
	return g.err
}

func (c *committer) run() {
	defer close(c.done)
	if c.release != nil {
		defer c.release()
	}
	for {
		select {
		case <-c.kick:
			// A woken goroutine runs next on its P, ahead of the writers
			// that are runnable too; with one P it would sync for a single
			// waiter every time. Yield once so that they join this
			// generation first.
			runtime.Gosched()
			c.flush()
		case <-c.quit:
			c.flush()
			return
		}
	}
}

// flush syncs once for the current generation, if there is one.
func (c *committer) flush() {
	c.mu.Lock()
	g := c.mu.next
	c.mu.next = nil
	err := c.mu.err
	c.mu.Unlock()
	if g == nil {
		return
	}
	if err == nil {
		if err = c.sync(); err != nil {
			err = fmt.Errorf("storage/embedded: sync: %w", err)
			c.mu.Lock()
			if c.mu.err == nil {
				c.mu.err = err
			}
			c.mu.Unlock()
		}
	}
	g.err = err
	close(g.done)
}

// stop syncs any remaining waiters and stops the goroutine.
func (c *committer) stop() {
	close(c.quit)
	<-c.done
}

// wal makes Badger's memtable write-ahead logs durable without going
// through DB.Sync, for two reasons:
//
//   - DB.Sync holds Badger's db.lock (read side) for the whole msync of the
//     active WAL, and Badger's writer takes that lock (write side) for every
//     request (ensureRoomForWrite), so commits stall while a sync runs and
//     group commit cannot overlap the next batch's writes with this batch's
//     fsync. fsync on our own descriptor of the WAL file writes back the same
//     dirty pages (Linux tracks pages dirtied through a shared mapping) and
//     takes no Badger lock.
//   - DB.Sync syncs only the *active* memtable's WAL. When Badger rotates a
//     full memtable, the old WAL is not synced until the memtable is flushed
//     to an (msync'ed) level-0 table, so a write that landed just before the
//     rotation would not be durable after DB.Sync returns.
//
// WAL files are "%05d.mem", numbered consecutively. sync fsyncs the one it
// knows as active, then every newer one, and the directory when a new one
// appeared. A WAL that is gone was flushed and deleted, which Badger does
// only after its table is durable.
//
// Values at or above Badger's value threshold go to the value log instead;
// the store tracks whether it wrote any and then calls DB.Sync as well.
//
// Only the committer's goroutine uses a wal.
type wal struct {
	dir    string
	active int      // newest WAL file id known; every older one is durable
	f      *os.File // open on active; nil until first needed
}

const walExt = ".mem"

func (w *wal) path(fid int) string {
	return filepath.Join(w.dir, fmt.Sprintf("%05d%s", fid, walExt))
}

func (w *wal) exists(fid int) (bool, error) {
	_, err := os.Stat(w.path(fid))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}

// syncActive fsyncs the active WAL through the cached descriptor.
func (w *wal) syncActive() error {
	if w.f == nil {
		f, err := os.Open(w.path(w.active))
		if errors.Is(err, fs.ErrNotExist) {
			return nil // flushed; durable in a table
		}
		if err != nil {
			return err
		}
		w.f = f
	}
	return w.f.Sync()
}

func (w *wal) advance(fid int) {
	if w.f != nil {
		w.f.Close() // read-only descriptor, already synced
		w.f = nil
	}
	w.active = fid
}

// sync makes every write committed before the call durable.
func (w *wal) sync() error {
	rotated := false
	for {
		if err := w.syncActive(); err != nil {
			return err
		}
		newer, err := w.exists(w.active + 1)
		if err != nil {
			return err
		}
		if !newer {
			break
		}
		w.advance(w.active + 1)
		rotated = true
	}
	if !rotated {
		cur, err := w.exists(w.active)
		if err != nil {
			return err
		}
		if cur {
			return nil
		}
		// The active WAL and its successor were flushed and deleted since
		// the last sync (several rotations in between): find the newest.
		return w.rescan()
	}
	return fsyncPath(w.dir)
}

// rescan fsyncs every WAL newer than the known active one and makes the
// newest active.
func (w *wal) rescan() error {
	fids, err := walFiles(w.dir)
	if err != nil {
		return err
	}
	for _, fid := range fids {
		if fid <= w.active {
			continue
		}
		w.advance(fid)
		if err := w.syncActive(); err != nil {
			return err
		}
	}
	return fsyncPath(w.dir)
}

func (w *wal) close() {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
}

// walFiles returns the ids of the WAL files in dir, ascending.
func walFiles(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var fids []int
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), walExt)
		if !ok {
			continue
		}
		fid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		fids = append(fids, fid)
	}
	slices.Sort(fids)
	return fids, nil
}

// fsyncPath fsyncs a file or directory by path; one that no longer exists
// is fine.
func fsyncPath(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
