// Package shareddb is a storage.Store on a database that several
// coordinators can share: MySQL, MariaDB, TiDB (Dialect MySQL) or
// PostgreSQL (Dialect Postgres), through gorm. It is named for what it is;
// the embedded store (storage/embedded) remains the single-node default.
//
// The schema is versioned (SchemaVersion) and created or upgraded only by
// an explicit step, Migrate (`xact sql migrate`), or by applying Schema's
// DDL by hand (`xact sql coordinator-schema`); Open refuses a database at
// another version with ErrSchema. There is no automatic migration.
//
// Every write is one database transaction that reads the rows it changes
// with a locking read (SELECT … FOR UPDATE), so concurrent writers of one
// global, on one coordinator or several, are ordered by the database. A
// transaction the database aborts for a deadlock, a serialization failure
// or a duplicate key of a concurrent creation is run again. A commit is as
// durable as the database makes it (with InnoDB,
// innodb_flush_log_at_trx_commit=1; with PostgreSQL, synchronous_commit
// on); a Relaxed write on PostgreSQL commits with synchronous_commit off,
// which keeps the WAL's order (storage.Relaxed's contract).
//
//	s, err := shareddb.Open(ctx, shareddb.MySQL, "xact:pw@tcp(db:3306)/xact")
//	if errors.Is(err, shareddb.ErrSchema) {
//		// run `xact sql migrate --store mysql --store-dsn …` first
//	}
package shareddb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/xact-io/xact/internal/backoff"
	"github.com/xact-io/xact/storage"
)

// Dialect names the database family.
type Dialect string

const (
	// MySQL is MySQL, MariaDB or TiDB; the DSN is go-sql-driver/mysql's
	// (user:password@tcp(host:3306)/db).
	MySQL Dialect = "mysql"
	// Postgres is PostgreSQL; the DSN is a postgres:// URL or a keyword
	// string, as pgx takes it.
	Postgres Dialect = "postgres"
)

// maxConns bounds the store's connections to the database (and is how
// many it keeps open when idle).
const maxConns = 64

// DefaultTombstoneRetention is how long a finished global's tombstone
// stays visible unless WithTombstoneRetention says otherwise.
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

// withClock replaces the clock tombstones expire by (tests).
func withClock(now func() time.Time) Option {
	return func(s *Store) { s.now = now }
}

// Store is a storage.Store on a shared database. Safe for concurrent use.
type Store struct {
	db        *gorm.DB
	dialect   Dialect
	retention time.Duration
	now       func() time.Time
	stopPurge chan struct{}
	purged    chan struct{}

	mu struct {
		sync.RWMutex
		closed bool
	}
	node struct { // this coordinator, once it joined (nodes.go)
		sync.Mutex
		m member
	}
	ops       sync.WaitGroup
	closeOnce sync.Once
}

var _ storage.Store = (*Store)(nil)

// openDB opens the database with gorm, quiet, with its errors translated
// (gorm.ErrDuplicatedKey).
func openDB(d Dialect, dsn string) (*gorm.DB, error) {
	var dial gorm.Dialector
	switch d {
	case MySQL:
		cfg, err := gomysql.ParseDSN(dsn)
		if err != nil {
			return nil, fmt.Errorf("shareddb: the %s DSN: %w", d, err)
		}
		// Arguments go into the statement text on the client: a server-side
		// prepared statement costs MariaDB a prepare, an execute and a close
		// per statement, and gorm prepares each anew (the database's CPU
		// was the limit of a one-node coordinator).
		cfg.InterpolateParams = true
		// READ COMMITTED, set once per connection (not by a statement
		// before every transaction). Under InnoDB's default REPEATABLE
		// READ, a locking read of a global that does not exist yet takes
		// a gap lock, and XIDs are handed out in order, so every Begin and
		// lazy registration locked the same gap at the end of the index:
		// at 64 concurrent transactions nearly every write deadlocked
		// (8 tx/s). Under READ COMMITTED a locking read locks only the
		// rows it finds, and two creators of one XID meet at the primary
		// key (a duplicate key: run again). PostgreSQL's default is READ
		// COMMITTED already.
		name, err := isolationVariable(cfg)
		if err != nil {
			return nil, err
		}
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		cfg.Params[name] = "'READ-COMMITTED'"
		dial = mysql.Open(cfg.FormatDSN())
	case Postgres:
		dial = postgres.Open(dsn)
	default:
		return nil, fmt.Errorf("shareddb: unknown dialect %q (want %s or %s)", d, MySQL, Postgres)
	}
	db, err := gorm.Open(dial, &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		TranslateError:         true,
	})
	if err != nil {
		return nil, fmt.Errorf("shareddb: open the %s database: %w", d, err)
	}
	return db, nil
}

// isolationVariable names the session variable of the isolation level:
// tx_isolation on MariaDB (transaction_isolation only from 11.1),
// transaction_isolation on MySQL (8.0 dropped tx_isolation) and TiDB.
func isolationVariable(cfg *gomysql.Config) (string, error) {
	c, err := gomysql.NewConnector(cfg)
	if err != nil {
		return "", fmt.Errorf("shareddb: the %s DSN: %w", MySQL, err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return "", fmt.Errorf("shareddb: connect to the %s database: %w", MySQL, err)
	}
	if strings.Contains(version, "MariaDB") {
		return "tx_isolation", nil
	}
	return "transaction_isolation", nil
}

func closeDB(db *gorm.DB) {
	if sqlDB, err := db.DB(); err == nil {
		sqlDB.Close()
	}
}

// Open connects to the database, checks that it answers and that its
// schema is SchemaVersion (ErrSchema otherwise, naming the command that
// fixes it), and starts the purge of expired tombstones.
func Open(ctx context.Context, d Dialect, dsn string, opts ...Option) (*Store, error) {
	db, err := openDB(d, dsn)
	if err != nil {
		return nil, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("shareddb: %w", err)
	}
	// Keep the connections: database/sql keeps 2 idle by default, so under
	// load nearly every transaction opened a connection (a handshake and
	// the session settings) and closed it again.
	sqlDB.SetMaxOpenConns(maxConns)
	sqlDB.SetMaxIdleConns(maxConns)
	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("shareddb: connect to the %s database: %w", d, err)
	}
	if err := checkSchema(ctx, db, d); err != nil {
		sqlDB.Close()
		return nil, err
	}
	s := &Store{db: db, dialect: d, retention: DefaultTombstoneRetention, now: time.Now,
		stopPurge: make(chan struct{}), purged: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	go s.purgeLoop()
	return s, nil
}

// Close waits for calls in flight, stops the purge and closes the
// database's connections. Later calls fail with storage.ErrClosed.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.mu.closed = true
		s.mu.Unlock()
		s.ops.Wait()
		close(s.stopPurge)
		<-s.purged
		if sqlDB, e := s.db.DB(); e == nil {
			err = sqlDB.Close()
		}
	})
	return err
}

// enter admits a call: ctx must not be done and the store not closed. On
// success the caller must call s.ops.Done.
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

// errRetry marks an error of a transaction that may succeed if run again.
var errRetry = errors.New("shareddb: retry")

// retryable reports whether the database aborted a transaction in a way
// that running it again may cure: a deadlock, a lock wait timeout or a
// serialization failure.
func retryable(err error) bool {
	if errors.Is(err, errRetry) {
		return true
	}
	var me *gomysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1213 || me.Number == 1205
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	return false
}

// txRetries bounds how often update runs a transaction the database
// aborted.
const txRetries = 20

// txKey carries a database transaction in a context: a lock table that
// runs a store write inside its own transaction (LockTable.Hold,
// Releasing) passes it so.
type txKey struct{}

func withTx(ctx context.Context, tx *gorm.DB) context.Context {
	return context.WithValue(ctx, txKey{}, tx)
}

func txFrom(ctx context.Context) *gorm.DB {
	tx, _ := ctx.Value(txKey{}).(*gorm.DB)
	return tx
}

// update runs fn in a database transaction, again if the database aborts
// it (retryable). An error from fn aborts the transaction and is returned
// as it is. A Relaxed write on PostgreSQL commits asynchronously. Inside a
// transaction ctx carries (withTx), fn runs in it, once: its owner commits
// and runs it again.
func (s *Store) update(ctx context.Context, d storage.Durability, fn func(tx *gorm.DB) error) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.ops.Done()
	body := func(tx *gorm.DB) error {
		if d == storage.Relaxed && s.dialect == Postgres {
			if err := tx.Exec("SET LOCAL synchronous_commit TO OFF").Error; err != nil {
				return err
			}
		}
		return fn(tx)
	}
	if tx := txFrom(ctx); tx != nil {
		return body(tx)
	}
	return s.inTx(ctx, body)
}

// inTx runs fn in a database transaction, again (up to txRetries times,
// after a short backoff) if the database aborts it for a deadlock, a lock
// wait timeout or a serialization failure, or fn asks for it (errRetry).
func (s *Store) inTx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	sched := backoff.Policy{Base: time.Millisecond, Max: 50 * time.Millisecond}
	for attempt := 0; ; attempt++ {
		err := s.db.WithContext(ctx).Transaction(fn)
		if err == nil {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("shareddb: %w (%v)", cerr, err)
		}
		if !retryable(err) || attempt >= txRetries {
			return err
		}
		if werr := sched.Wait(ctx, attempt); werr != nil {
			return werr
		}
	}
}

// view runs a read.
func (s *Store) view(ctx context.Context, fn func(db *gorm.DB) error) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.ops.Done()
	err := fn(s.db.WithContext(ctx))
	if cerr := ctx.Err(); err != nil && cerr != nil {
		return fmt.Errorf("shareddb: %w (%v)", cerr, err)
	}
	return err
}

// purgeLoop deletes expired tombstones now and then.
func (s *Store) purgeLoop() {
	defer close(s.purged)
	every := min(max(s.retention/10, time.Second), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stopPurge:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		s.db.WithContext(ctx).Exec("DELETE FROM xact_globals WHERE finished = ? AND expires_at <= ?", true, s.now().UnixNano())
		cancel()
	}
}
