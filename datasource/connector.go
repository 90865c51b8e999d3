package datasource

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/xact-io/xact/datasource/mysqldialect"
	"github.com/xact-io/xact/internal/tracing"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm"
)

// Connector is a driver.Connector whose connections take part in AT-mode
// global transactions. Open a *sql.DB on it with OpenDB (or sql.OpenDB);
// closing that DB closes the Connector.
//
// A Connector created with WithRM serves phase two of its resource's
// branches (rm.Client.Serve with BRANCH_TYPE_AT): commit deletes undo
// logs, rollback replays them. It owns a pool of its own for that work
// (sized after the application's, see WithPhaseTwo, with bounded lock
// waits, see WithPhaseTwoLockWait), a goroutine that deletes undo logs in
// batches and one that deletes old markers (WithCleanup); Close stops
// them.
type Connector struct {
	inner   driver.Connector
	cfg     config
	dialect *mysqldialect.Dialect
	// tracer makes the branches' spans (trace.go), from the RM's tracer
	// provider.
	tracer tracing.Tracer
	// p2 is the phase-two pool: plain connections of inner, outside any
	// global scope.
	p2  *sql.DB
	del *deleter
	// app is the application's pool (Open, OpenDB), whose size the
	// phase-two pool follows; nil if unknown.
	app    atomic.Pointer[sql.DB]
	p2Size struct {
		sync.Mutex
		n int
	}
	// rollbackOnTimeout caches the server's innodb_rollback_on_timeout
	// (read-only while it runs): 0 not read yet, 1 OFF, 2 ON.
	rollbackOnTimeout atomic.Int32
	// undoTableOK is set once Ping found the undo_log table usable.
	undoTableOK atomic.Bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     struct {
		sync.Mutex
		closed bool
	}
}

var (
	_ driver.Connector = (*Connector)(nil)
	_ io.Closer        = (*Connector)(nil)
)

// NewConnector wraps inner, a connector of a MySQL or MariaDB driver (the
// dialect parses MySQL), and returns a Connector. With WithRM it needs
// WithResourceID (inner does not tell its address), declares phase two for
// that resource on the RM, and requires the undo_log table
// (undo.LogTableDDL) in the database.
func NewConnector(inner driver.Connector, opts ...Option) (*Connector, error) {
	if inner == nil {
		return nil, fmt.Errorf("%w: nil inner connector", ErrInvalidOption)
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidOption)
		}
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidOption, err)
		}
	}
	if cfg.rm != nil {
		if err := cfg.rm.Err(); err != nil {
			return nil, fmt.Errorf("%w: WithRM: %w", ErrInvalidOption, err)
		}
		if cfg.resource == "" {
			return nil, fmt.Errorf("%w: a data source with an RM needs WithResourceID (or Open with a DSN that names host, port and database)", ErrInvalidOption)
		}
	}
	c := &Connector{
		inner:   inner,
		cfg:     cfg,
		dialect: mysqldialect.New(append([]mysqldialect.Option{mysqldialect.WithMetadataTTL(cfg.metadataTTL)}, cfg.dialect...)...),
		tracer:  tracing.NewTracer(cfg.rm.TracerProvider(), traceScope),
	}
	c.p2 = sql.OpenDB(plainConnector{inner: inner, lockWait: cfg.phaseTwoLock})
	c.p2.SetConnMaxIdleTime(phaseTwoIdleTime)
	c.sizePhaseTwo()
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	if cfg.rm != nil {
		c.del = newDeleter(c.p2, cfg.deleteBatch, cfg.deleteDelay, cfg.log.With("resource", cfg.resource))
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.del.run(ctx)
		}()
		if cfg.cleanupEvery > 0 {
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				c.cleanupLoop(ctx)
			}()
		}
		if err := cfg.rm.Serve(cfg.resource, xactpb.BranchType_BRANCH_TYPE_AT, &handler{c: c}); err != nil {
			c.Close()
			return nil, fmt.Errorf("%w: serve %s: %w", ErrInvalidOption, cfg.resource, err)
		}
	}
	return c, nil
}

// Open opens a *sql.DB on the data source named by driverName ("mysql" for
// go-sql-driver/mysql, or another registered driver that speaks MySQL)
// and dsn, wrapped by NewConnector. Unless WithResourceID is given, the
// resource id is "host:port/dbname" from the DSN (ResourceID), which must
// then be go-sql-driver/mysql's format. Closing the DB closes the
// Connector. As with sql.Open, nothing is checked until the first
// connection: call PingContext, which also checks the undo_log table
// (ErrUndoLogTable).
func Open(driverName, dsn string, opts ...Option) (*sql.DB, error) {
	probe, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, fmt.Errorf("datasource: %w", err)
	}
	drv := probe.Driver()
	probe.Close()
	var inner driver.Connector
	if dc, ok := drv.(driver.DriverContext); ok {
		if inner, err = dc.OpenConnector(dsn); err != nil {
			return nil, fmt.Errorf("datasource: %w", err)
		}
	} else {
		inner = dsnConnector{drv: drv, dsn: dsn}
	}
	if cfg, err := gomysql.ParseDSN(dsn); err == nil && cfg.DBName != "" {
		opts = append([]Option{WithResourceID(ResourceID(cfg))}, opts...)
	}
	c, err := NewConnector(inner, opts...)
	if err != nil {
		return nil, err
	}
	return OpenDB(c), nil
}

// OpenDB opens a *sql.DB on c, as sql.OpenDB does, and lets c's phase-two
// pool follow its size (see WithPhaseTwo). Closing the DB closes c.
func OpenDB(c *Connector) *sql.DB {
	db := sql.OpenDB(c)
	c.app.Store(db)
	c.sizePhaseTwo()
	return db
}

// phaseTwoIdleTime is how long an idle phase-two connection is kept: a
// burst of rollbacks may open many, which are not needed afterwards.
const phaseTwoIdleTime = time.Minute

// phaseTwoSize is the size of the phase-two pool: WithPhaseTwo's, or the
// application pool's (at least DefaultPhaseTwoConns), or, for an
// unlimited or unknown application pool, what an rm.Client runs at once
// by default.
func (c *Connector) phaseTwoSize() int {
	if c.cfg.phaseTwoConns > 0 {
		return c.cfg.phaseTwoConns
	}
	n := 0
	if db := c.app.Load(); db != nil {
		n = db.Stats().MaxOpenConnections
	}
	if n <= 0 {
		n = rm.DefaultConcurrency
	}
	return max(n, DefaultPhaseTwoConns)
}

// sizePhaseTwo sets the phase-two pool's size from phaseTwoSize. Phase
// two calls it before each rollback, so that the pool follows a
// SetMaxOpenConns the application makes after Open.
func (c *Connector) sizePhaseTwo() {
	n := c.phaseTwoSize()
	c.p2Size.Lock()
	defer c.p2Size.Unlock()
	if n != c.p2Size.n {
		c.p2Size.n = n
		c.p2.SetMaxOpenConns(n)
		c.p2.SetMaxIdleConns(n)
	}
}

// ResourceID returns the default resource id of a database: "host:port/dbname"
// for TCP ("unix:path/dbname" for a socket). It never contains
// credentials.
func ResourceID(cfg *gomysql.Config) string {
	addr := cfg.Addr
	switch cfg.Net {
	case "", "tcp", "tcp4", "tcp6":
		if addr == "" {
			addr = "127.0.0.1:3306"
		} else if !strings.Contains(addr, ":") || strings.HasSuffix(addr, "]") {
			addr += ":3306"
		}
	default:
		addr = cfg.Net + ":" + addr
	}
	return addr + "/" + cfg.DBName
}

// ResourceID returns the resource id of the data source.
func (c *Connector) ResourceID() string { return c.cfg.resource }

// Connect opens a connection of the inner connector and wraps it.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	if c.isClosed() {
		return nil, ErrClosed
	}
	ic, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return newConn(c, ic), nil
}

// Driver returns a driver whose Open refuses: connections come from the
// Connector (database/sql never calls it for a DB opened with OpenDB).
func (c *Connector) Driver() driver.Driver { return connectorDriver{} }

// Close stops the Connector's goroutines and waits for them, closes its
// phase-two pool, and closes the inner connector if it is an io.Closer.
// Phase-two actions that arrive afterwards are answered with an unknown
// outcome, so the TC retries them (with another process serving the
// resource, or this one after a restart). It is safe to call more than
// once.
func (c *Connector) Close() error {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	err := c.p2.Close()
	if cl, ok := c.inner.(io.Closer); ok {
		err = errors.Join(err, cl.Close())
	}
	return err
}

func (c *Connector) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.closed
}

// usable checks that global work can start.
func (c *Connector) usable(s scope) error {
	if s.global() && c.isClosed() {
		return ErrClosed
	}
	return nil
}

// noteDDL drops cached table metadata after a statement that may have
// changed a schema.
func (c *Connector) noteDDL(query string) {
	switch firstWord(query) {
	case "CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE":
		c.dialect.Invalidate("")
	}
}

// firstWord returns the first keyword of query, upper case, skipping
// blanks and comments.
func firstWord(q string) string {
	i := 0
	for i < len(q) {
		switch {
		case q[i] == ' ' || q[i] == '\t' || q[i] == '\n' || q[i] == '\r' || q[i] == '(':
			i++
		case strings.HasPrefix(q[i:], "/*"):
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				return ""
			}
			i += j + 4
		case strings.HasPrefix(q[i:], "-- ") || q[i] == '#':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				return ""
			}
			i += j + 1
		default:
			j := i
			for j < len(q) && (q[j] >= 'a' && q[j] <= 'z' || q[j] >= 'A' && q[j] <= 'Z') {
				j++
			}
			if j-i > 8 {
				return ""
			}
			return strings.ToUpper(q[i:j])
		}
	}
	return ""
}

// plainConnector makes the phase-two pool's connections: inner's, with
// lock waits bounded to lockWait (WithPhaseTwoLockWait). It hides inner's
// Close, so that closing the pool does not close the inner connector
// twice.
type plainConnector struct {
	inner    driver.Connector
	lockWait time.Duration
}

func (p plainConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := p.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	secs := int64((p.lockWait + time.Second - 1) / time.Second)
	q := fmt.Sprintf("SET SESSION innodb_lock_wait_timeout = %d, lock_wait_timeout = %d", secs, secs)
	if _, err := (&conn{inner: dc}).execDirect(ctx, q, nil); err != nil {
		dc.Close()
		return nil, fmt.Errorf("datasource: phase-two connection: %s: %w", q, err)
	}
	return dc, nil
}
func (p plainConnector) Driver() driver.Driver { return p.inner.Driver() }

// dsnConnector is database/sql's connector for a driver without
// DriverContext.
type dsnConnector struct {
	drv driver.Driver
	dsn string
}

func (d dsnConnector) Connect(context.Context) (driver.Conn, error) { return d.drv.Open(d.dsn) }
func (d dsnConnector) Driver() driver.Driver                        { return d.drv }

type connectorDriver struct{}

func (connectorDriver) Open(string) (driver.Conn, error) {
	return nil, errors.New("datasource: open connections through the Connector (sql.OpenDB)")
}
