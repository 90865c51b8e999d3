package mysqldialect

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/xact-io/xact/undo"
)

// Dialect is the MySQL/MariaDB dialect of one resource (one database). It
// caches table metadata; it is safe for concurrent use by every
// connection of the resource.
type Dialect struct {
	ttl time.Duration
	// replayAge is how old a table's shape a rollback may use.
	replayAge time.Duration
	now       func() time.Time
	// readAfter reads every after image back from the database, even
	// where the statement lets it be derived (derive.go).
	readAfter bool
	mu        struct {
		sync.Mutex
		tables map[string]*Table
		// shapes are what rollbacks read (loadShape), kept apart from
		// tables: they lack what phase one needs.
		shapes map[string]*Table
	}
}

// Option configures a Dialect.
type Option func(*Dialect)

// WithAfterImagesRead makes every UPDATE and INSERT read its after image
// back from the database by primary key. By default an UPDATE that only
// does integer arithmetic on integer columns (SET n = n + ?) derives it
// from the before image, and a plain INSERT that gives every column an
// integer, a short ASCII string or NULL takes it from its own values,
// each saving that query; see derive.go and derive_insert.go for the
// exact rules.
func WithAfterImagesRead() Option {
	return func(d *Dialect) { d.readAfter = true }
}

// WithMetadataTTL sets how long table metadata is cached before it is
// read again (default one minute; 0 caches until Invalidate). Rollback
// has its own, shorter bound: WithReplayMetadataAge.
func WithMetadataTTL(d time.Duration) Option {
	return func(x *Dialect) { x.ttl = d }
}

// DefaultReplayMetadataAge is how old the table shape a rollback checks
// its records against and builds its statements from may be.
const DefaultReplayMetadataAge = time.Second

// WithReplayMetadataAge sets how old the live shape of a table (columns,
// types, keys) that a rollback uses may be (default
// DefaultReplayMetadataAge); 0 reads it for every rollback.
//
// Reading it costs three information_schema queries per table, about
// 3 ms of MariaDB time for a small table, several times the rollback's own
// statements: read for every rollback, it was most of the rollback's
// latency and of its database CPU under a workload with many rollbacks.
// Phase one itself builds images from metadata up to WithMetadataTTL old.
func WithReplayMetadataAge(d time.Duration) Option {
	return func(x *Dialect) { x.replayAge = d }
}

// New returns a dialect with an empty metadata cache.
func New(opts ...Option) *Dialect {
	d := &Dialect{ttl: time.Minute, replayAge: DefaultReplayMetadataAge, now: time.Now}
	d.mu.tables = make(map[string]*Table)
	d.mu.shapes = make(map[string]*Table)
	for _, o := range opts {
		o(d)
	}
	return d
}

// Table returns the metadata of table name in conn's current database,
// from the cache if it is fresh. The result is shared: do not modify it.
func (d *Dialect) Table(ctx context.Context, conn driver.Conn, name string) (*Table, error) {
	return d.lookup(ctx, conn, name, false)
}

// replayTable returns the shape of table name for a rollback (see
// loadShape): read from the live schema unless it was read at most
// replayAge ago. Shapes are cached apart from phase one's metadata,
// which needs the triggers and foreign keys a shape leaves out.
func (d *Dialect) replayTable(ctx context.Context, conn driver.Conn, name string) (*Table, error) {
	return d.lookup(ctx, conn, name, true)
}

// lookup returns name's metadata (shape: only its shape) from its cache
// while it is fresh, else reads and caches it.
func (d *Dialect) lookup(ctx context.Context, conn driver.Conn, name string, shape bool) (*Table, error) {
	d.mu.Lock()
	cache, load, fresh := d.mu.tables, loadTable, func(t *Table) bool { return d.ttl == 0 || d.now().Sub(t.loaded) < d.ttl }
	if shape {
		cache, load, fresh = d.mu.shapes, loadShape, func(t *Table) bool { return d.replayAge > 0 && d.now().Sub(t.loaded) < d.replayAge }
	}
	t, ok := cache[name]
	d.mu.Unlock()
	if ok && fresh(t) {
		return t, nil
	}
	t, err := load(ctx, conn, name)
	if err != nil {
		if errors.Is(err, ErrTableNotFound) {
			d.Invalidate(name)
		}
		return nil, err
	}
	t.loaded = d.now()
	d.mu.Lock()
	cache[name] = t
	d.mu.Unlock()
	return t, nil
}

// Invalidate drops the cached metadata of table name, or of every table
// if name is "". Call it after DDL (see Classify).
func (d *Dialect) Invalidate(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if name == "" {
		clear(d.mu.tables)
		clear(d.mu.shapes)
		return
	}
	delete(d.mu.tables, name)
	delete(d.mu.shapes, name)
}

// Prepare parses query and plans it for a branch; see PrepareStatement.
func (d *Dialect) Prepare(ctx context.Context, conn driver.Conn, query string, args []driver.NamedValue) (*Plan, error) {
	st, err := Parse(query)
	if err != nil {
		return nil, err
	}
	return d.PrepareStatement(ctx, conn, st, args)
}

// PrepareStatement plans one execution of st with args inside a branch,
// on conn (the branch's connection, in its local transaction; the
// dialect reads metadata through it). It returns an error matching
// ErrUnsupported, before anything runs, for a statement whose undo cannot
// be built. A plan is for one execution: call Before, run the statement,
// call After, then take Records and LockKeys.
func (d *Dialect) PrepareStatement(ctx context.Context, conn driver.Conn, st *Statement, args []driver.NamedValue) (*Plan, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	p := &Plan{st: st, args: args}
	if n := st.NumInput(); n >= 0 && len(args) != n {
		return nil, fmt.Errorf("mysql: statement has %d placeholders, %d arguments given", n, len(args))
	}
	var err error
	switch st.kind {
	case KindOther:
		return p, nil
	case KindDDL, KindUnsupported:
		return nil, unsupported("%s", st.reason)
	case KindSavepoint:
		return nil, fmt.Errorf("mysql: %s is not planned: run it and move the transaction's marks (Statement.Savepoint)", st.savepoint.Op)
	case KindSelectForUpdate:
		p.impl, err = d.planLock(ctx, conn, p)
	case KindInsert:
		p.impl, err = d.planInsert(ctx, conn, p)
	case KindUpdate:
		p.impl, err = d.planUpdate(ctx, conn, p)
	case KindDelete:
		p.impl, err = d.planDelete(ctx, conn, p)
	default:
		return nil, unsupported("statement kind %v", st.kind)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Plan is one execution of one statement in a branch.
type Plan struct {
	st      *Statement
	args    []driver.NamedValue
	impl    planner // nil for KindOther
	step    int     // 0 new, 1 before done, 2 after done
	records []undo.Record
	keys    []string
	seen    map[string]bool
}

// planner is the work of one kind of statement.
type planner interface {
	// before runs before the statement: before images, lock-key queries.
	before(ctx context.Context, conn driver.Conn, p *Plan) error
	// after runs after it: after images, records.
	after(ctx context.Context, conn driver.Conn, p *Plan, res driver.Result) error
}

// Kind returns the statement's kind.
func (p *Plan) Kind() Kind { return p.st.kind }

// Returning reports whether the statement returns rows (MariaDB's
// RETURNING): run it with QueryContext, read all its rows, and pass a nil
// result to After.
func (p *Plan) Returning() bool { return p.st.Returning() }

// Before runs what must precede the statement, in the same local
// transaction on conn: the before image (SELECT … FOR UPDATE with the
// statement's own WHERE, ORDER BY and LIMIT and its arguments), or for
// SELECT … FOR UPDATE the query of the locked rows' keys. When it
// returns, LockKeys holds the keys of every row the statement will lock,
// update or delete (not yet of rows an INSERT will add), so the caller
// can ask the TC before running the statement (SELECT … FOR UPDATE, the
// GlobalLock option).
func (p *Plan) Before(ctx context.Context, conn driver.Conn) error {
	if p.step != 0 {
		return errors.New("mysql: Plan.Before called twice")
	}
	p.step = 1
	if p.impl == nil {
		return nil
	}
	return p.impl.before(ctx, conn, p)
}

// After runs what must follow the statement: the after image by primary
// key and the records. res is the statement's result, or nil if it ran
// through QueryContext (RETURNING); INSERT with generated keys then reads
// LAST_INSERT_ID() itself. An error matching ErrImageMismatch means the
// statement did more than its images hold: the caller must roll back the
// local transaction.
func (p *Plan) After(ctx context.Context, conn driver.Conn, res driver.Result) error {
	if p.step != 1 {
		return errors.New("mysql: Plan.After called without Before")
	}
	p.step = 2
	if p.impl == nil {
		return nil
	}
	return p.impl.after(ctx, conn, p, res)
}

// Records returns the undo records of the statement (none if it changed
// nothing), in the order they must be appended to the branch's log.
func (p *Plan) Records() []undo.Record { return p.records }

// LockKeys returns the canonical keys (undo.LockKey) of every row the
// statement locked, read or wrote, without repeats.
func (p *Plan) LockKeys() []string { return p.keys }

func (p *Plan) addKey(k string) {
	if p.seen == nil {
		p.seen = make(map[string]bool)
	}
	if !p.seen[k] {
		p.seen[k] = true
		p.keys = append(p.keys, k)
	}
}

func (p *Plan) addRecord(r undo.Record) error {
	keys, err := r.LockKeys()
	if err != nil {
		return err
	}
	for _, k := range keys {
		p.addKey(k)
	}
	p.records = append(p.records, r)
	return nil
}
