package datasource

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/xact-io/xact/datasource/mysqldialect"
	"github.com/xact-io/xact/rm"
)

// Defaults of the options.
const (
	// DefaultLockWait is how long a commit or a SELECT … FOR UPDATE waits
	// for rows another global transaction holds before it fails with
	// ErrLockConflict.
	DefaultLockWait = 2 * time.Second
	// DefaultLockRetryInterval is the pause between two attempts to take
	// or check global locks.
	DefaultLockRetryInterval = 10 * time.Millisecond
	// DefaultCommitTimeout bounds each TC call of a local commit or
	// rollback (register, report, query locks), detached from the
	// caller's cancellation.
	DefaultCommitTimeout = 10 * time.Second
	// DefaultPhaseTwoConns is the fewest database connections the
	// phase-two pool (undo-log deletion and rollback replay) may open
	// when it follows the application's pool (see WithPhaseTwo).
	DefaultPhaseTwoConns = 8
	// DefaultPhaseTwoLockWait bounds how long one statement of phase two
	// waits for a row or metadata lock (see WithPhaseTwoLockWait).
	DefaultPhaseTwoLockWait = 5 * time.Second
	// DefaultDeleteBatch is the most branches whose undo logs one DELETE
	// removes after phase-two commit.
	DefaultDeleteBatch = 256
	// DefaultDeleteDelay is how long the undo-log deleter waits, after the
	// first committed branch of a batch, for more to delete with it. An
	// AT-only global's Commit does not wait for phase two, so the delay
	// only postpones the clean-up (measured: 5.5 branches per DELETE at
	// concurrency 64 instead of 1.9).
	DefaultDeleteDelay = 2 * time.Millisecond
	// DefaultMarkerRetention is how long a "global finished" marker is
	// kept before the cleanup loop deletes it.
	DefaultMarkerRetention = 24 * time.Hour
	// DefaultCleanupInterval is how often the cleanup loop runs.
	DefaultCleanupInterval = time.Hour
	// DefaultMetadataTTL is how long table metadata is cached.
	DefaultMetadataTTL = time.Minute
)

type config struct {
	rm            *rm.Client
	resource      string
	lockWait      time.Duration
	lockInterval  time.Duration
	waitRollback  bool // keep waiting for a lock whose holder is rolling back
	globalOnly    bool // refuse writes outside global work
	dialect       []mysqldialect.Option
	commitTimeout time.Duration
	log           *slog.Logger
	phaseTwoConns int // 0: follow the application's pool
	phaseTwoLock  time.Duration
	deleteBatch   int
	deleteDelay   time.Duration
	cleanupEvery  time.Duration
	retention     time.Duration
	metadataTTL   time.Duration
	hooks         hooks
}

// hooks are seams for tests; nil functions are skipped.
type hooks struct {
	// afterRegister runs in a branch's commit between its registration
	// and its undo-log insert.
	afterRegister func(xid string, branchID int64)
}

func defaultConfig() config {
	return config{
		lockWait:      DefaultLockWait,
		lockInterval:  DefaultLockRetryInterval,
		commitTimeout: DefaultCommitTimeout,
		log:           slog.New(slog.DiscardHandler),
		phaseTwoLock:  DefaultPhaseTwoLockWait,
		deleteBatch:   DefaultDeleteBatch,
		deleteDelay:   DefaultDeleteDelay,
		cleanupEvery:  DefaultCleanupInterval,
		retention:     DefaultMarkerRetention,
		metadataTTL:   DefaultMetadataTTL,
	}
}

// Option configures a Connector. A bad option makes NewConnector and Open
// fail with an error wrapping ErrInvalidOption; nothing panics.
type Option func(*config) error

// WithRM sets the resource manager through which the data source takes
// part in global transactions: branch registration and lock checks in
// phase one, and phase two, which the Connector serves for its resource id
// (rm.Client.Serve with BRANCH_TYPE_AT). Without it the data source runs
// local transactions only and refuses work whose context carries an XID
// (ErrNoRM). The rm.Client must be started (rm.Client.Start) by its owner;
// the Connector does not close it.
func WithRM(c *rm.Client) Option {
	return func(cfg *config) error {
		if c == nil {
			return fmt.Errorf("WithRM: nil client")
		}
		cfg.rm = c
		return nil
	}
}

// WithResourceID sets the resource id under which the database's branches
// and row locks are known to the TC. It must name the same database in
// every process that writes to it and stay the same across restarts
// (phase two of a branch goes to whoever serves its resource id). Open
// defaults it to "host:port/dbname" from the DSN (never credentials);
// NewConnector requires it when the data source has an RM.
func WithResourceID(id string) Option {
	return func(cfg *config) error {
		if id == "" || len(id) > 256 {
			return fmt.Errorf("WithResourceID: id must be 1-256 bytes, got %d", len(id))
		}
		cfg.resource = id
		return nil
	}
}

// WithLockWait sets how long a commit (branch registration) or a SELECT …
// FOR UPDATE retries, every interval, while another global transaction
// holds one of its rows, before failing with ErrLockConflict (defaults
// DefaultLockWait, DefaultLockRetryInterval). A budget of 0 tries once.
//
// While a commit waits, its rows stay locked in the database; a global
// transaction that holds the global lock and is rolling back waits for
// them in turn. The budget is what breaks that wait: keep it well below
// the RM's action timeout and innodb_lock_wait_timeout.
func WithLockWait(budget, interval time.Duration) Option {
	return func(cfg *config) error {
		if budget < 0 || interval <= 0 {
			return fmt.Errorf("WithLockWait: budget must be >= 0 and interval > 0, got %v, %v", budget, interval)
		}
		cfg.lockWait, cfg.lockInterval = budget, interval
		return nil
	}
}

// WithLockWaitOnRollback(true) makes a commit or a SELECT … FOR UPDATE
// keep waiting, within its lock-wait budget, for a row whose holder is
// rolling back. By default (false, as Seata's
// retryPolicyBranchRollbackOnConflict) it fails at once with
// ErrLockConflict (LockConflictError.HolderRollingBack): the holder's
// compensation of that row needs the database row lock that this local
// transaction took when it wrote or locked the row, so the holder's
// rollback cannot finish before this wait ends, and waiting only delays
// both. Failing frees the row at once; the caller's global transaction
// fails and can be retried.
func WithLockWaitOnRollback(wait bool) Option {
	return func(cfg *config) error {
		cfg.waitRollback = wait
		return nil
	}
}

// WithGlobalWritesOnly makes the data source refuse, with
// ErrNoGlobalTransaction and before it runs, every statement that writes
// or locks rows (INSERT, UPDATE, DELETE, SELECT … FOR UPDATE, …) with a
// context that carries no global transaction and no
// WithGlobalLockContext. Reads, DDL and savepoints still pass.
//
// It catches the easiest mistake to make with AT mode: passing the
// context from outside tm.Do's callback (the outer ctx instead of the
// callback's parameter). Such a statement is an ordinary local
// transaction: it commits at once and a rollback of the global
// transaction never compensates it. Use it for databases that are only
// written inside global transactions; plain local writes then need a pool
// opened without xact.
func WithGlobalWritesOnly() Option {
	return func(cfg *config) error {
		cfg.globalOnly = true
		return nil
	}
}

// WithCommitTimeout sets the deadline of each TC call made by a local
// commit (register branch, report a phase-one failure, check locks),
// which runs detached from the caller's cancellation: a commit that has
// registered its branch must finish or report, whatever the caller does
// (default DefaultCommitTimeout).
func WithCommitTimeout(d time.Duration) Option {
	return func(cfg *config) error {
		if d <= 0 {
			return fmt.Errorf("WithCommitTimeout: must be > 0, got %v", d)
		}
		cfg.commitTimeout = d
		return nil
	}
}

// WithLogger sets the logger (default: discard). Records about a branch
// carry the keys xid, branch_id and resource.
func WithLogger(l *slog.Logger) Option {
	return func(cfg *config) error {
		if l == nil {
			return fmt.Errorf("WithLogger: nil logger")
		}
		cfg.log = l
		return nil
	}
}

// WithPhaseTwo sets the most database connections phase two uses (a pool
// of its own beside the application's) and the most branches whose undo
// logs one DELETE removes (default DefaultDeleteBatch).
//
// conns = 0, the default, makes the pool follow the application's: as
// many connections as the *sql.DB returned by Open or OpenDB may open
// (its SetMaxOpenConns, read again before each rollback), but at least
// DefaultPhaseTwoConns. When that pool is unlimited (database/sql's
// default), or the *sql.DB was opened with sql.OpenDB so that the
// Connector cannot see it, the size is rm.DefaultConcurrency (16), the
// number of phase-two actions an rm.Client runs at once by default.
//
// Rollbacks that wait for row locks held by the application's
// transactions must not take every phase-two connection, or no other
// rollback and no undo-log deletion runs until they end: keep conns at
// least the application's pool size and the rm.Client's WithConcurrency.
// A rollback that waits too long gives up (WithPhaseTwoLockWait) and is
// retried by the TC.
func WithPhaseTwo(conns, deleteBatch int) Option {
	return func(cfg *config) error {
		if conns < 0 || deleteBatch < 1 {
			return fmt.Errorf("WithPhaseTwo: conns must be >= 0 and deleteBatch >= 1, got %d, %d", conns, deleteBatch)
		}
		cfg.phaseTwoConns, cfg.deleteBatch = conns, deleteBatch
		return nil
	}
}

// WithPhaseTwoLockWait bounds how long one statement of phase two waits
// for a lock (default DefaultPhaseTwoLockWait, rounded up to whole
// seconds): every phase-two connection runs SET SESSION
// innodb_lock_wait_timeout (row locks) and lock_wait_timeout (metadata
// locks) to it when it opens. A rollback whose rows are locked by a
// transaction of the application then fails with a lock-wait timeout
// (1205) after at most d, frees its connection, and answers an unknown
// outcome, which the TC retries with backoff; the rows are compensated
// once they are free.
//
// Keep d above WithLockWait's budget: the usual holder of a row that a
// rollback needs is a branch's local transaction waiting for the global
// lock the rolling-back transaction still holds, and it gives up after
// that budget, so the rollback then goes through on its first attempt.
// Keep it below the rm.Client's WithActionTimeout (and the TC's
// PhaseTwoTimeout): when the action's context ends first, the driver
// closes the connection to interrupt the statement, but the server only
// notices at the end of the lock wait, and until then the abandoned
// transaction keeps the locks it has, the retry's included.
func WithPhaseTwoLockWait(d time.Duration) Option {
	return func(cfg *config) error {
		if d <= 0 || d > 24*time.Hour {
			return fmt.Errorf("WithPhaseTwoLockWait: must be > 0 and at most 24h, got %v", d)
		}
		cfg.phaseTwoLock = d
		return nil
	}
}

// WithDeleteDelay sets how long the undo-log deleter waits, after the
// first branch whose phase-two commit arrives, for more branches to remove
// in the same DELETE (default DefaultDeleteDelay; 0 deletes what is queued
// at once). A longer delay means fewer, larger DELETEs and later
// phase-two acknowledgements; the rows stay locked by nobody meanwhile.
func WithDeleteDelay(d time.Duration) Option {
	return func(cfg *config) error {
		if d < 0 {
			return fmt.Errorf("WithDeleteDelay: delay must be >= 0, got %v", d)
		}
		cfg.deleteDelay = d
		return nil
	}
}

// WithCleanup sets how often the Connector deletes "global finished"
// markers (the undo_log rows a rollback leaves when it finds no undo log,
// invariant I8) older than retention (defaults DefaultCleanupInterval,
// DefaultMarkerRetention). every = 0 turns the loop off; Cleanup can be
// called instead. A marker must outlive any local commit of its branch
// still on its way, so keep retention far above WithCommitTimeout.
func WithCleanup(every, retention time.Duration) Option {
	return func(cfg *config) error {
		if every < 0 || retention <= 0 {
			return fmt.Errorf("WithCleanup: every must be >= 0 and retention > 0, got %v, %v", every, retention)
		}
		cfg.cleanupEvery, cfg.retention = every, retention
		return nil
	}
}

// WithMetadataTTL sets how long table metadata (columns, keys, triggers)
// is cached before it is read again (default DefaultMetadataTTL; 0 caches
// until DDL run through this data source). Rollback checks its records
// against the table's live shape, read at most
// mysqldialect.DefaultReplayMetadataAge (1 s) before.
func WithMetadataTTL(d time.Duration) Option {
	return func(cfg *config) error {
		if d < 0 {
			return fmt.Errorf("WithMetadataTTL: must be >= 0, got %v", d)
		}
		cfg.metadataTTL = d
		return nil
	}
}

// WithAfterImagesRead makes every UPDATE and INSERT read its after image
// back from the database instead of deriving it from the statement where
// the result is certain (mysqldialect.WithAfterImagesRead): one more query per
// statement, for those who want the image to come from the database
// whatever the statement.
func WithAfterImagesRead() Option {
	return func(cfg *config) error {
		cfg.dialect = append(cfg.dialect, mysqldialect.WithAfterImagesRead())
		return nil
	}
}
