package tc

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
)

// parkedRefresh is how stale the parked-globals gauge may be: a scrape
// lists the parked globals at most this often, unless this server parked
// or resumed one since (then at the next scrape).
const parkedRefresh = 5 * time.Second

// Attribute values. The sets are built once (newMetrics), so that
// recording allocates nothing beyond what the OTel API needs.
var (
	modes    = [...]string{"none", "at", "tcc", "saga", "xa", "mixed"}
	outcomes = [...]string{"committed", "rolled_back", "timed_out"}
)

const (
	modeNone = iota
	modeAT
	modeTCC
	modeSaga
	modeXA
	modeMixed
)

const (
	outcomeCommitted = iota
	outcomeRolledBack
	outcomeTimedOut
)

// Store write operations timed by timedStore.
const (
	opCreateGlobal = iota
	opUpdateGlobal
	opFinishGlobal
	opAddBranch
	opUpdateBranch
	numOps
)

var opNames = [numOps]string{"create_global", "update_global", "finish_global", "add_branch", "update_branch"}

// metrics are the coordinator's instruments. With Config.HTTPAddr empty
// they record into a no-op provider; otherwise into a MeterProvider the
// server owns, read by the Prometheus exporter that /metrics serves. No
// global provider is set.
type metrics struct {
	provider *sdkmetric.MeterProvider // nil when off
	handler  http.Handler             // /metrics; nil when off

	begun      metric.Int64Counter
	finished   metric.Int64Counter
	phaseOne   metric.Float64Histogram
	phaseTwo   metric.Float64Histogram
	retries    metric.Int64Counter
	conflicts  metric.Int64Counter
	storeWrite metric.Float64Histogram
	recovery   metric.Float64Gauge

	beganExplicit, beganLazy       []metric.AddOption
	finishedBy                     [len(modes)][len(outcomes)][]metric.AddOption
	phaseTwoBy                     [len(outcomes)][]metric.RecordOption
	decidedCommit, decidedRollback []metric.RecordOption
	decidedTimeout                 []metric.RecordOption
	conflictRegister, conflictQry  []metric.AddOption
	storeBy                        [numOps][2][]metric.RecordOption // by op, durability

	// parked caches the count of parked globals for the gauge.
	parked struct {
		sync.Mutex
		n     int64
		at    time.Time
		valid bool
	}
	parkedDirty atomic.Bool
}

func addOpt(kvs ...attribute.KeyValue) []metric.AddOption {
	return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(kvs...))}
}

func recOpt(kvs ...attribute.KeyValue) []metric.RecordOption {
	return []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(kvs...))}
}

// Latency buckets, in seconds.
var (
	txBuckets    = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800}
	storeBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}
)

// newMetrics makes the instruments; on is false for the no-op provider.
func newMetrics(on bool) (*metrics, error) {
	m := &metrics{}
	var mp metric.MeterProvider = noop.NewMeterProvider()
	if on {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		exp, err := otelprom.New(
			otelprom.WithRegisterer(reg),
			otelprom.WithoutScopeInfo(),
			otelprom.WithoutTargetInfo(),
			otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
		)
		if err != nil {
			return nil, err
		}
		m.provider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(resource.Empty()))
		m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		mp = m.provider
	}
	meter := mp.Meter("github.com/xact-io/xact/tc")
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	m.begun, err = meter.Int64Counter("xact.globals.begun", metric.WithUnit("{global}"),
		metric.WithDescription("Global transactions begun (begin: explicit, or lazy on the first registration or decision)."))
	check(err)
	m.finished, err = meter.Int64Counter("xact.globals.finished", metric.WithUnit("{global}"),
		metric.WithDescription("Global transactions finished, by outcome and by the mode of their branches (none, at, tcc, saga, xa, mixed)."))
	check(err)
	m.phaseOne, err = meter.Float64Histogram("xact.phase_one.duration", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(txBuckets...),
		metric.WithDescription("Time from Begin to the decision (commit, rollback or timeout)."))
	check(err)
	m.phaseTwo, err = meter.Float64Histogram("xact.phase_two.duration", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(txBuckets...),
		metric.WithDescription("Time from the decision to the finished global, by outcome."))
	check(err)
	m.retries, err = meter.Int64Counter("xact.phase_two.retries", metric.WithUnit("{retry}"),
		metric.WithDescription("Phase-two rounds that did not finish and were scheduled again."))
	check(err)
	m.conflicts, err = meter.Int64Counter("xact.lock.conflicts", metric.WithUnit("{conflict}"),
		metric.WithDescription("Global row lock conflicts (op: register, a branch registration refused; query, a lock query that found a row held)."))
	check(err)
	m.storeWrite, err = meter.Float64Histogram("xact.store.write.duration", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(storeBuckets...),
		metric.WithDescription("Latency of the coordinator's store writes, by operation and durability."))
	check(err)
	m.recovery, err = meter.Float64Gauge("xact.recovery.duration", metric.WithUnit("s"),
		metric.WithDescription("How long the last start's recovery took."))
	check(err)
	if len(errs) > 0 {
		return nil, errs[0]
	}

	kBegin, kMode, kOutcome, kDecision, kOp, kDur := attribute.Key("begin"), attribute.Key("mode"), attribute.Key("outcome"),
		attribute.Key("decision"), attribute.Key("op"), attribute.Key("durability")
	m.beganExplicit, m.beganLazy = addOpt(kBegin.String("explicit")), addOpt(kBegin.String("lazy"))
	for i, md := range modes {
		for j, o := range outcomes {
			m.finishedBy[i][j] = addOpt(kMode.String(md), kOutcome.String(o))
		}
	}
	for j, o := range outcomes {
		m.phaseTwoBy[j] = recOpt(kOutcome.String(o))
	}
	m.decidedCommit = recOpt(kDecision.String("commit"))
	m.decidedRollback = recOpt(kDecision.String("rollback"))
	m.decidedTimeout = recOpt(kDecision.String("timeout"))
	m.conflictRegister, m.conflictQry = addOpt(kOp.String("register")), addOpt(kOp.String("query"))
	for op := range numOps {
		m.storeBy[op][storage.Durable] = recOpt(kOp.String(opNames[op]), kDur.String("durable"))
		m.storeBy[op][storage.Relaxed] = recOpt(kOp.String(opNames[op]), kDur.String("relaxed"))
	}
	return m, nil
}

// observe registers the gauges read at collection time.
func (m *metrics) observe(s *Server, lockLen func() int) error {
	if m.provider == nil {
		return nil
	}
	meter := m.provider.Meter("github.com/xact-io/xact/tc")
	parked, err := meter.Int64ObservableGauge("xact.globals.parked", metric.WithUnit("{global}"),
		metric.WithDescription("Unfinished globals parked for an operator (xact tx list --parked). Refreshed at most every 5s, or at once after this server parks or resumes one."))
	if err != nil {
		return err
	}
	rms, err := meter.Int64ObservableGauge("xact.rms.attached", metric.WithUnit("{session}"),
		metric.WithDescription("RM sessions attached to this coordinator (Attach streams)."))
	if err != nil {
		return err
	}
	insts := []metric.Observable{parked, rms}
	var locks metric.Int64ObservableGauge
	if lockLen != nil {
		locks, err = meter.Int64ObservableGauge("xact.locks.held", metric.WithUnit("{row}"),
			metric.WithDescription("Rows in the coordinator's in-memory lock table (held or being taken)."))
		if err != nil {
			return err
		}
		insts = append(insts, locks)
	}
	_, err = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		if n, ok := m.parkedCount(ctx, s); ok {
			o.ObserveInt64(parked, n)
		}
		o.ObserveInt64(rms, int64(s.hub.Sessions()))
		if lockLen != nil {
			o.ObserveInt64(locks, int64(lockLen()))
		}
		return nil
	}, insts...)
	return err
}

// parkedCount is the number of parked globals, listed from the store at
// most every parkedRefresh unless marked stale (parkedChanged).
func (m *metrics) parkedCount(ctx context.Context, s *Server) (int64, bool) {
	m.parked.Lock()
	defer m.parked.Unlock()
	stale := m.parkedDirty.Swap(false)
	if m.parked.valid && !stale && time.Since(m.parked.at) < parkedRefresh {
		return m.parked.n, true
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	gs, err := s.ledger.ListGlobals(ctx, storage.Filter{ParkedOnly: true})
	if err != nil {
		if stale {
			m.parkedDirty.Store(true)
		}
		return m.parked.n, m.parked.valid
	}
	var n int64
	for _, g := range gs {
		if g.Parked && !g.Finished {
			n++
		}
	}
	m.parked.n, m.parked.at, m.parked.valid = n, time.Now(), true
	return n, true
}

// parkedChanged marks the parked count stale: this server parked or
// resumed a global.
func (m *metrics) parkedChanged() { m.parkedDirty.Store(true) }

// shutdown stops the provider.
func (m *metrics) shutdown() error {
	if m.provider == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return m.provider.Shutdown(ctx)
}

// modeOf is the mode of a global with these branches.
func modeOf(branches []*storage.Branch) int {
	mode := modeNone
	for _, b := range branches {
		var bm int
		switch b.Type {
		case xactpb.BranchType_BRANCH_TYPE_AT:
			bm = modeAT
		case xactpb.BranchType_BRANCH_TYPE_TCC:
			bm = modeTCC
		case xactpb.BranchType_BRANCH_TYPE_SAGA:
			bm = modeSaga
		case xactpb.BranchType_BRANCH_TYPE_XA:
			bm = modeXA
		default:
			bm = modeMixed
		}
		switch mode {
		case modeNone:
			mode = bm
		case bm:
		default:
			return modeMixed
		}
	}
	return mode
}

// outcomeOf is the outcome of the final status st.
func outcomeOf(st storage.Status) int {
	switch {
	case st == stCommitted:
		return outcomeCommitted
	case timeoutFamily(st):
		return outcomeTimedOut
	default:
		return outcomeRolledBack
	}
}

// began counts a global begun.
func (m *metrics) began(lazy bool) {
	if lazy {
		m.begun.Add(context.Background(), 1, m.beganLazy...)
		return
	}
	m.begun.Add(context.Background(), 1, m.beganExplicit...)
}

// decided records phase one of g, decided now with target.
func (m *metrics) decided(g *storage.Global, target storage.Status, now time.Time) {
	if g.BeganAt.IsZero() {
		return
	}
	opts := m.decidedRollback
	switch {
	case target == stCommitting:
		opts = m.decidedCommit
	case timeoutFamily(target):
		opts = m.decidedTimeout
	}
	m.phaseOne.Record(context.Background(), now.Sub(g.BeganAt).Seconds(), opts...)
}

// finishedGlobal records a global g (as of its last round) finished now
// with final, with these branches. Phase two is timed from the decision,
// the first event of g's history (unless the history is trimmed); g nil:
// finished with its decision (no branches), not timed.
func (m *metrics) finishedGlobal(g *storage.Global, branches []*storage.Branch, final storage.Status, now time.Time) {
	o := outcomeOf(final)
	m.finished.Add(context.Background(), 1, m.finishedBy[modeOf(branches)][o]...)
	if g != nil && len(g.History) > 0 && len(g.History) < maxHistory {
		m.phaseTwo.Record(context.Background(), now.Sub(g.History[0].At).Seconds(), m.phaseTwoBy[o]...)
	}
}

// timedStore times the store's writes for xact.store.write.duration.
// Reads and the rest pass through the embedded Store.
type timedStore struct {
	storage.Store
	m *metrics
}

func (t timedStore) record(op int, d storage.Durability, start time.Time) {
	if d > storage.Relaxed {
		d = storage.Durable
	}
	t.m.storeWrite.Record(context.Background(), time.Since(start).Seconds(), t.m.storeBy[op][d]...)
}

func (t timedStore) CreateGlobal(ctx context.Context, g *storage.Global, d storage.Durability) error {
	defer t.record(opCreateGlobal, d, time.Now())
	return t.Store.CreateGlobal(ctx, g, d)
}

func (t timedStore) UpdateGlobal(ctx context.Context, xid string, fn func(g *storage.Global) error, d storage.Durability) (*storage.Global, error) {
	defer t.record(opUpdateGlobal, d, time.Now())
	return t.Store.UpdateGlobal(ctx, xid, fn, d)
}

func (t timedStore) FinishGlobal(ctx context.Context, xid string, final storage.Status, d storage.Durability) error {
	defer t.record(opFinishGlobal, d, time.Now())
	return t.Store.FinishGlobal(ctx, xid, final, d)
}

func (t timedStore) AddBranch(ctx context.Context, b *storage.Branch, create *storage.Global, admit storage.Admit, d storage.Durability) (int64, bool, error) {
	defer t.record(opAddBranch, d, time.Now())
	return t.Store.AddBranch(ctx, b, create, admit, d)
}

func (t timedStore) UpdateBranch(ctx context.Context, xid string, id int64, fn func(b *storage.Branch) error, d storage.Durability) (*storage.Branch, error) {
	defer t.record(opUpdateBranch, d, time.Now())
	return t.Store.UpdateBranch(ctx, xid, id, fn, d)
}
