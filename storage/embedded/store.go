// Package badger is the coordinator's embedded, durable storage.Store, built
// on Badger (github.com/dgraph-io/badger/v4).
//
// Every mutating method returns only after its change is on disk (unless
// asked for storage.Relaxed). Concurrent callers share fsyncs (group
// commit, see sync.go), so throughput grows with the number of concurrent
// requests instead of being bound by one fsync per change. Each mutation is
// one serializable Badger transaction.
//
// The global row locks are not stored as records: they are a view of the
// branches (their lock keys and release flags) that the coordinator keeps
// in memory (tc/ledger).
//
//	s, err := badger.Open("/var/lib/xact")
//	if err != nil {
//		return err // errors.Is(err, storage.ErrLocked): another process has it
//	}
//	defer s.Close()
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bdb "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/storage"
)

// Defaults for the options.
const (
	DefaultTombstoneRetention = 10 * time.Minute
	DefaultGCInterval         = 5 * time.Minute
	DefaultGCDiscardRatio     = 0.5
)

// Option configures Open.
type Option func(*config)

type config struct {
	retention    time.Duration
	logger       *slog.Logger
	gcInterval   time.Duration
	discardRatio float64
	tune         func(bdb.Options) bdb.Options
	writeBudget  int // maxWritesPerTxn unless a test lowers it
	// readOnly: Verify's open: nothing migrated.
	readOnly bool
}

// WithTombstoneRetention sets how long tombstones of finished globals are
// kept. Badger expires them with a TTL at one-second granularity. d <= 0
// keeps the default.
func WithTombstoneRetention(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.retention = d
		}
	}
}

// WithLogger sends Badger's log and the store's own warnings to l. By
// default both are discarded.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithValueLogGC sets how often the store runs Badger's value-log garbage
// collection and with which discard ratio (0 < ratio < 1). interval <= 0
// turns it off.
func WithValueLogGC(interval time.Duration, discardRatio float64) Option {
	return func(c *config) {
		c.gcInterval = interval
		if discardRatio > 0 && discardRatio < 1 {
			c.discardRatio = discardRatio
		}
	}
}

// WithBadgerOptions lets fn adjust Badger's options (memtable and cache
// sizes, compression, ...). The store overrides what its guarantees rest
// on: Dir, ValueDir, SyncWrites (false; the store syncs), InMemory,
// ReadOnly, DetectConflicts (true) and Logger.
func WithBadgerOptions(fn func(bdb.Options) bdb.Options) Option {
	return func(c *config) { c.tune = fn }
}

// Store is a storage.Store on a Badger database in one directory. It is
// safe for concurrent use.
type Store struct {
	db        *bdb.DB
	cfg       config
	unlockDir func() error
	commit    *committer
	gcStop    chan struct{}
	gcDone    chan struct{}
	// vlogAt is Badger's value threshold: values this long or longer go to
	// the value log, which then needs a DB.Sync (vlogDirty).
	vlogAt    int64
	vlogDirty atomic.Bool
	wal       *wal // used by the committer's goroutine only
	dir       string
	state     *stateFile // the committer's goroutine, Open and Close
	// serving: Open has checked the directory; the committer records
	// durable versions in the state file.
	serving atomic.Bool
	// format is the directory's format version as Open found it; legacy:
	// records are read without seals (Verify of a directory older than
	// format 3, which it does not migrate).
	format uint64
	legacy bool
	loaded loaded // what Open's load found
	due    *dueIndex
	// writeBudget bounds the writes of one cleanup or migration
	// transaction.
	writeBudget int

	mu struct {
		sync.RWMutex
		closed bool
	}
	ops       sync.WaitGroup // calls in flight; Close waits for them
	closeOnce sync.Once
	closeErr  error
}

var _ storage.Store = (*Store)(nil)

// Open opens (creating if needed) the store in dir. It fails with an error
// matching storage.ErrLocked if another process, or another Store in this
// process, has dir open.
//
// Open verifies the directory before it serves anything: every table block,
// the MANIFEST and the logs (files.go), every live global and branch record
// (their seals, and that no branch of a live global is missing), and the
// state file's version and counts (state.go). If anything is damaged it
// fails with a *CorruptError (matching storage.ErrCorrupt) that lists the
// damage by file, and leaves the directory as it found it.
func Open(dir string, opts ...Option) (*Store, error) {
	cfg := config{
		retention:    DefaultTombstoneRetention,
		gcInterval:   DefaultGCInterval,
		discardRatio: DefaultGCDiscardRatio,
		writeBudget:  maxWritesPerTxn,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("storage/embedded: create %s: %w", dir, err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s, err := open(dir, cfg, unlock)
	if err != nil {
		unlock()
		return nil, err
	}
	return s, nil
}

// open is Open once the directory is locked.
func open(dir string, cfg config, unlock func() error) (*Store, error) {
	if dirBusy(dir) {
		// A plain Badger process has it: its files are changing under
		// the checks.
		return nil, fmt.Errorf("storage/embedded: %s: %w (held by a Badger process)", dir, storage.ErrLocked)
	}
	prev, havePrev, err := readState(dir)
	var damage []Damage
	if err != nil {
		damage = append(damage, Damage{File: stateFileName, What: err.Error()})
	}
	damage = append(damage, checkFiles(dir, prev)...)
	if len(damage) > 0 {
		// Badger is not even opened: it would drop or delete what is
		// damaged, and the operator needs the files as they are.
		return nil, &CorruptError{Dir: dir, Damage: damage}
	}

	bo := bdb.DefaultOptions(dir)
	if cfg.tune != nil {
		bo = cfg.tune(bo)
	}
	bo = bo.WithDir(dir).WithValueDir(dir).
		WithSyncWrites(false).
		WithInMemory(false).
		WithReadOnly(false).
		WithDetectConflicts(true).
		// Not OnTableRead: Badger would skip a table that fails (see
		// files.go); checkFiles verified every table already.
		WithChecksumVerificationMode(options.OnBlockRead).
		WithVerifyValueChecksum(true).
		WithLogger(nil)
	if cfg.logger != nil {
		bo = bo.WithLogger(slogAdapter{cfg.logger.With("component", "badger")})
	}
	var db *bdb.DB
	err = guard(func() error {
		var err error
		db, err = bdb.Open(bo)
		return err
	})
	if err != nil {
		if dirBusy(dir) {
			return nil, fmt.Errorf("storage/embedded: %s: %w (%v)", dir, storage.ErrLocked, err)
		}
		return nil, fmt.Errorf("storage/embedded: open %s: %w", dir, err)
	}
	fids, err := walFiles(dir)
	if err != nil || len(fids) == 0 {
		db.Close()
		if err == nil {
			err = errors.New("no memtable WAL file found")
		}
		return nil, fmt.Errorf("storage/embedded: open %s: %w", dir, err)
	}
	sf, err := openStateFile(dir, prev)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("storage/embedded: open %s: %w", dir, err)
	}
	w := &wal{dir: dir, active: fids[len(fids)-1]}

	s := &Store{
		db:          db,
		dir:         dir,
		cfg:         cfg,
		unlockDir:   unlock,
		gcStop:      make(chan struct{}),
		gcDone:      make(chan struct{}),
		vlogAt:      bo.ValueThreshold,
		wal:         w,
		state:       sf,
		writeBudget: cfg.writeBudget,
		due:         newDueIndex(),
	}
	s.commit = newCommitter(func() error {
		version := s.readTs()
		if s.vlogDirty.Swap(false) {
			if err := db.Sync(); err != nil {
				return err
			}
		}
		if err := w.sync(); err != nil {
			return err
		}
		if s.serving.Load() {
			if err := sf.mark(version); err != nil {
				s.logError("storage/embedded: write the state file", "err", err)
			}
		}
		return nil
	}, w.close)
	fail := func(err error) (*Store, error) {
		s.commit.stop()
		db.Close()
		sf.close()
		return nil, err
	}
	if err := s.migrate(); err != nil {
		return fail(fmt.Errorf("storage/embedded: open %s: %w", dir, err))
	}
	n, err := s.load()
	if err != nil {
		return fail(fmt.Errorf("storage/embedded: open %s: %w", dir, err))
	}
	s.loaded, damage = n, n.damage
	if havePrev {
		if v := db.MaxVersion(); v < prev.version {
			damage = append(damage, Damage{What: fmt.Sprintf(
				"writes acknowledged up to version %d are missing (the newest stored is %d): a WAL (*.mem) or table was truncated or deleted", prev.version, v)})
		}
		if prev.clean && (n.globals != prev.globals || n.branches != prev.branches) {
			damage = append(damage, Damage{What: fmt.Sprintf(
				"%d global and %d branch records were stored at the last clean stop; %d and %d are left", prev.globals, prev.branches, n.globals, n.branches)})
		}
	}
	if len(damage) > 0 {
		return fail(&CorruptError{Dir: dir, Damage: damage})
	}
	// From here on the directory is not cleanly stopped any more.
	if err := sf.write(state{version: s.readTs()}, true); err != nil {
		return fail(fmt.Errorf("storage/embedded: open %s: write the state file: %w", dir, err))
	}
	s.serving.Store(true)
	go s.runGC()
	return s, nil
}

// readTs is the newest committed version: every transaction up to it has
// been written to Badger's WAL.
func (s *Store) readTs() uint64 {
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	return txn.ReadTs()
}

// logError reports what the store cannot return to a caller.
func (s *Store) logError(msg string, args ...any) {
	if s.cfg.logger != nil {
		s.cfg.logger.Error(msg, args...)
	}
}

// Close waits for calls in flight, stops the background goroutines, and
// closes the database. Later calls fail with storage.ErrClosed; Close
// itself may be called again and then returns nil. After a clean close it
// records the number of records in the state file, for the next Open to
// check.
func (s *Store) Close() error {
	first := false
	s.closeOnce.Do(func() {
		first = true
		s.mu.Lock()
		s.mu.closed = true
		s.mu.Unlock()
		s.ops.Wait()
		close(s.gcStop)
		<-s.gcDone
		s.commit.stop()
		s.serving.Store(false)
		final, countErr := s.count()
		final.clean, final.version = true, s.readTs()
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("storage/embedded: close: %w", err)
		}
		if s.closeErr == nil && countErr == nil && s.commit.failed() == nil {
			if err := s.state.write(final, true); err != nil {
				s.closeErr = fmt.Errorf("storage/embedded: close: write the state file: %w", err)
			}
		}
		s.state.close()
		if err := s.unlockDir(); err != nil && s.closeErr == nil {
			s.closeErr = fmt.Errorf("storage/embedded: unlock: %w", err)
		}
	})
	if !first {
		return nil
	}
	return s.closeErr
}

// enter admits a call: it fails if ctx is done or the store is closed.
// On success the caller must call s.ops.Done.
func (s *Store) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.mu.closed {
		return storage.ErrClosed
	}
	s.ops.Add(1)
	return nil
}

// tx is a read-write transaction that notes whether it wrote a value long
// enough for Badger to put it in the value log. Its Set and SetEntry shadow
// Txn's.
type tx struct {
	*bdb.Txn
	vlogAt int64
	vlog   bool
	due    []dueChange // applied to the due index after the commit
	// lasting: the transaction sets an entry that does not expire;
	// fleeting: it deletes, or sets an entry that expires.
	lasting, fleeting bool
}

// dueChange is a global's new NextAt, for the due index.
type dueChange struct {
	xid     string
	at      time.Time
	removed bool
}

// Set is Txn.Set, noting long values.
func (t *tx) Set(key, val []byte) error {
	t.vlog = t.vlog || int64(len(val)) >= t.vlogAt
	t.lasting = true
	return t.Txn.Set(key, val)
}

// SetEntry is Txn.SetEntry, noting long values and entries that expire.
func (t *tx) SetEntry(e *bdb.Entry) error {
	t.vlog = t.vlog || int64(len(e.Value)) >= t.vlogAt
	if e.ExpiresAt == 0 {
		t.lasting = true
	} else {
		t.fleeting = true
	}
	return t.Txn.SetEntry(e)
}

// Delete is Txn.Delete, noting it.
func (t *tx) Delete(key []byte) error {
	t.fleeting = true
	return t.Txn.Delete(key)
}

// keepVersion makes sure that the transaction leaves an entry at its
// version that no compaction drops: one that writes only deletions and
// entries that expire also writes markKey (a blind write, so it conflicts
// with nothing). Badger's largest stored version then never goes back,
// which the state file's check relies on (state.go).
func (t *tx) keepVersion() error {
	if t.fleeting && !t.lasting {
		return t.Set(markKey, nil)
	}
	return nil
}

// update runs fn in a read-write transaction and returns once the change is
// durable (d Durable) or committed (Relaxed). fn must be repeatable: on a
// transaction conflict (another transaction wrote a key fn read) it runs
// again on fresh data. An error from fn aborts the transaction and is
// returned as it is.
func (s *Store) update(ctx context.Context, d storage.Durability, fn func(t *tx) error) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.ops.Done()
	if err := s.commit.failed(); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		var t *tx
		err := guardBadger(func() error {
			return s.db.Update(func(txn *bdb.Txn) error {
				t = &tx{Txn: txn, vlogAt: s.vlogAt}
				if err := fn(t); err != nil {
					return err
				}
				return t.keepVersion()
			})
		})
		if err == nil {
			for _, c := range t.due {
				s.due.set(c.xid, c.at, t.ReadTs(), c.removed)
			}
			if t.vlog {
				// Set after the commit and before joining a generation, so
				// the sync that releases this caller sees it.
				s.vlogDirty.Store(true)
			}
			break
		}
		if errors.Is(err, bdb.ErrTxnTooBig) {
			// Too many lock keys or too large a record for one Badger
			// transaction: the request is too large, retrying cannot help.
			return fmt.Errorf("storage/embedded: %w: %w", protocol.ErrTooLarge, err)
		}
		if !errors.Is(err, bdb.ErrConflict) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if attempt%8 == 0 {
			// Heavy contention on one key: let the winners through.
			time.Sleep(time.Duration(attempt/8) * 50 * time.Microsecond)
		}
	}
	if d == storage.Relaxed {
		// The caller accepts an acknowledgement before the sync; the next
		// durable write's sync covers this one (the log is in commit order).
		return nil
	}
	// Wait even when fn wrote nothing: a no-op answer may rest on a change
	// another caller committed and is still waiting to sync.
	if err := s.commit.wait(); err != nil {
		return fmt.Errorf("%w: %w", storage.ErrNotDurable, err)
	}
	return nil
}

// view runs fn in a read-only transaction.
func (s *Store) view(ctx context.Context, fn func(txn *bdb.Txn) error) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.ops.Done()
	return guardBadger(func() error { return s.db.View(fn) })
}

// guardBadger runs fn, which calls Badger, and turns a panic into an error
// wrapping ErrCorrupt. Badger panics on some damaged data it reads (a
// block whose entry offsets point outside it); the panic unwinds through
// its deferred unlocks and discards, so the store stays usable for the
// rest of the data.
func guardBadger(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: Badger failed reading the store: %v", ErrCorrupt, r)
		}
	}()
	return fn()
}

// stateInterval is how often an idle store checks whether Badger changed
// its MANIFEST (the committer checks at every sync).
const stateInterval = time.Second

// runGC runs value-log garbage collection and keeps the state file's
// MANIFEST signature current, until Close.
func (s *Store) runGC() {
	defer close(s.gcDone)
	var gc <-chan time.Time
	if s.cfg.gcInterval > 0 {
		t := time.NewTicker(s.cfg.gcInterval)
		defer t.Stop()
		gc = t.C
	}
	st := time.NewTicker(stateInterval)
	defer st.Stop()
	for {
		select {
		case <-s.gcStop:
			return
		case <-st.C:
			if s.serving.Load() {
				if err := s.state.mark(0); err != nil {
					s.logError("storage/embedded: write the state file", "err", err)
				}
			}
			continue
		case <-gc:
		}
		// One call rewrites at most one value-log file; repeat while it
		// finds work.
		for {
			err := s.db.RunValueLogGC(s.cfg.discardRatio)
			if err != nil {
				if !errors.Is(err, bdb.ErrNoRewrite) && !errors.Is(err, bdb.ErrRejected) && s.cfg.logger != nil {
					s.cfg.logger.Warn("storage/embedded: value log GC failed", "err", err)
				}
				break
			}
			select {
			case <-s.gcStop:
				return
			default:
			}
		}
	}
}

// itemBranch decodes the (sealed) branch record stored in item.
func itemBranch(item *bdb.Item) (*storage.Branch, error) {
	return itemBranchFormat(item, false)
}

// itemGlobal decodes the (sealed) global record stored in item.
func itemGlobal(item *bdb.Item) (*storage.Global, error) {
	var g *storage.Global
	err := itemRecord(item, false, func(msg []byte) error {
		var err error
		g, err = decodeGlobal(msg)
		return err
	})
	return g, err
}

// itemBranchFormat is itemBranch that, if legacy, also takes a record
// without a seal (written before format version 3; the migration reads
// them).
func itemBranchFormat(item *bdb.Item, legacy bool) (*storage.Branch, error) {
	var b *storage.Branch
	err := itemRecord(item, legacy, func(msg []byte) error {
		var err error
		b, err = decodeBranch(msg)
		return err
	})
	return b, err
}

// itemRecord hands decode the message stored in item, its seal checked
// and removed. A value Badger cannot read (a value-log entry that fails
// its checksum, a pointer past the end of its file) is damage too.
func itemRecord(item *bdb.Item, legacy bool, decode func(msg []byte) error) error {
	var sealErr error
	err := item.Value(func(v []byte) error {
		msg, err := unseal(item.Key(), v)
		if err != nil {
			if !legacy {
				sealErr = err
				return err
			}
			msg = v
		}
		return decode(msg)
	})
	if err != nil && sealErr == nil && !errors.Is(err, ErrCorrupt) {
		return fmt.Errorf("%w: read the value of key %q: %w", ErrCorrupt, item.Key(), err)
	}
	return err
}
