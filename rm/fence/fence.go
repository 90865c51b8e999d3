package fence

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Fence gives participants on a database (TCC resources, saga steps)
// idempotent Confirm and Cancel, empty rollback, and anti-hanging
// protection, by keeping one row per branch in tcc_fence_log (DDL),
// written in the same local transaction as the business change:
//
//	Try:     insert (xid, branch) as tried, then run the business Try, in one transaction.
//	         A row already there means the branch was cancelled: refuse (ErrTryAfterCancel).
//	         If the business Try fails, its work is rolled back to a savepoint and the row is
//	         committed as try-failed, so that Cancel knows the Try arrived and failed.
//	Confirm: lock the row; tried -> run the business Confirm and mark confirmed;
//	         confirmed -> nothing (a repeated Confirm); no row or cancelled -> permanent error.
//	Cancel:  lock the row; no row -> insert it as suspended and return (empty rollback: the
//	         business Cancel is not called); tried or try-failed -> run the business Cancel
//	         (told which) and mark cancelled; cancelled or suspended -> nothing.
//
// Rows of finished branches are deleted by Cleanup, which a loop started by
// New runs periodically (see WithCleanup) until Close.
//
// A Fence is safe for concurrent use. Concurrent phase-two calls for one
// branch (a redelivery racing the original, in this process or another)
// serialize on the row lock: exactly one runs the business function.
type Fence struct {
	db  *sql.DB
	cfg config

	stop context.CancelFunc
	wg   sync.WaitGroup
	mu   struct {
		sync.Mutex
		closed bool
	}
}

// Defaults of the fence's options.
const (
	// DefaultRetention is how old a finished fence row must be before the
	// cleanup loop deletes it. A suspended row must outlive any Try that
	// may still be on its way (such a Try runs within its global
	// transaction's timeout), so keep it well above the longest timeout.
	DefaultRetention = 24 * time.Hour
	// DefaultCleanupInterval is how often the cleanup loop runs.
	DefaultCleanupInterval = time.Hour
	// DefaultCleanupBatch is the most rows one DELETE removes.
	DefaultCleanupBatch = 1000
)

type config struct {
	log       *slog.Logger
	txOpts    *sql.TxOptions
	every     time.Duration
	retention time.Duration
	batch     int
}

// Option configures a Fence.
type Option func(*config) error

// WithCleanup sets how often the cleanup loop runs and how old a finished
// row must be to be deleted (defaults DefaultCleanupInterval,
// DefaultRetention). every == 0 starts no loop: call Cleanup yourself.
func WithCleanup(every, olderThan time.Duration) Option {
	return func(c *config) error {
		if every < 0 || olderThan <= 0 {
			return fmt.Errorf("WithCleanup(%v, %v): want every >= 0 and olderThan > 0", every, olderThan)
		}
		c.every, c.retention = every, olderThan
		return nil
	}
}

// WithCleanupBatch sets the most rows one DELETE of Cleanup removes
// (default DefaultCleanupBatch).
func WithCleanupBatch(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("WithCleanupBatch(%d): must be positive", n)
		}
		c.batch = n
		return nil
	}
}

// WithTxOptions sets the options of the local transactions the fence
// begins for Try, Confirm and Cancel (default nil: the database's
// defaults).
func WithTxOptions(o *sql.TxOptions) Option {
	return func(c *config) error {
		c.txOpts = o
		return nil
	}
}

// WithLogger sets the logger of the cleanup loop and of failed
// bookkeeping (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("WithLogger: nil logger")
		}
		c.log = l
		return nil
	}
}

// New returns a Fence on db, whose schema must hold tcc_fence_log (DDL, or
// CreateTable). Unless WithCleanup(0, ...) is given it starts the cleanup
// loop; Close stops it. The Fence does not own db.
func New(db *sql.DB, opts ...Option) (*Fence, error) {
	if db == nil {
		return nil, fmt.Errorf("fence: new: nil db: %w", ErrInvalidArgument)
	}
	cfg := config{
		log:       slog.New(slog.DiscardHandler),
		every:     DefaultCleanupInterval,
		retention: DefaultRetention,
		batch:     DefaultCleanupBatch,
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("fence: new: %w: %w", ErrInvalidArgument, err)
		}
	}
	f := &Fence{db: db, cfg: cfg}
	ctx, cancel := context.WithCancel(context.Background())
	f.stop = cancel
	if cfg.every > 0 {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.cleanupLoop(ctx)
		}()
	}
	return f, nil
}

// Close stops the cleanup loop and waits for it. Calls made after Close
// return ErrClosed. Close does not close the database.
func (f *Fence) Close() error {
	f.mu.Lock()
	f.mu.closed = true
	f.mu.Unlock()
	f.stop()
	f.wg.Wait()
	return nil
}

func (f *Fence) usable() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.closed {
		return ErrClosed
	}
	return nil
}
