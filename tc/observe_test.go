package tc_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/storage/memory"
	"github.com/xact-io/xact/tc"
	"github.com/xact-io/xact/tc/tctest"
)

var withHTTP = tctest.WithConfig(func(c *tc.Config) { c.HTTPAddr = "127.0.0.1:0" })

// get fetches path from the server's HTTP address.
func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// scrape reads /metrics with the Prometheus text parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, addr, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d %q", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return mfs
}

// value is the sum of the samples of family name whose labels include
// labels: counter and gauge values, histogram counts. ok is false if the
// family is missing.
func value(mfs map[string]*dto.MetricFamily, name string, labels ...string) (v float64, ok bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			v += m.GetCounter().GetValue()
		case m.Gauge != nil:
			v += m.GetGauge().GetValue()
		case m.Histogram != nil:
			v += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return v, true
}

// TestMetrics: after a committed and a rolled-back global, a lock conflict
// and a parked global, /metrics (parsed, not matched as text) shows them.
func TestMetrics(t *testing.T) {
	srv := tctest.Start(t, waitAT, withHTTP)
	addr := srv.Server().HTTPAddr()
	c := newClient(t, srv)
	rm := attachRM(t, srv.Conn(t), "db1")

	x1 := c.begin(time.Minute)
	c.mustRegister(x1, "db1", "k1")
	if st, err := c.commit(x1); err != nil || st != committed {
		t.Fatalf("Commit = %v, %v", st, err)
	}
	x2 := c.begin(time.Minute)
	c.mustRegister(x2, "db1", "k2")
	if st, err := c.rollback(x2); err != nil || st != rollbacked {
		t.Fatalf("Rollback = %v, %v", st, err)
	}
	x3 := c.begin(time.Minute)
	c.mustRegister(x3, "db1", "k3")
	x4 := c.begin(time.Minute)
	if _, err := c.register(x4, "db1", "k3"); err == nil {
		t.Fatal("a second global registered a held row")
	}

	type want struct {
		name   string
		labels []string
		v      float64
	}
	check := func(ws []want) func() bool {
		return func() bool {
			mfs := scrape(t, addr)
			for _, w := range ws {
				// A counter no one has added to is not exported: 0.
				if v, ok := value(mfs, w.name, w.labels...); v != w.v || !ok && w.v != 0 {
					t.Logf("%s%v = %v (present %v), want %v", w.name, w.labels, v, ok, w.v)
					return false
				}
			}
			return true
		}
	}
	eventually(t, "metrics of one commit, one rollback, one conflict", check([]want{
		{"xact_globals_begun_total", []string{"begin", "explicit"}, 4},
		{"xact_globals_finished_total", []string{"mode", "at", "outcome", "committed"}, 1},
		{"xact_globals_finished_total", []string{"mode", "at", "outcome", "rolled_back"}, 1},
		{"xact_globals_finished_total", []string{"outcome", "timed_out"}, 0},
		{"xact_phase_one_duration_seconds", []string{"decision", "commit"}, 1},
		{"xact_phase_one_duration_seconds", []string{"decision", "rollback"}, 1},
		{"xact_phase_two_duration_seconds", []string{"outcome", "committed"}, 1},
		{"xact_phase_two_duration_seconds", []string{"outcome", "rolled_back"}, 1},
		{"xact_lock_conflicts_total", []string{"op", "register"}, 1},
		{"xact_locks_held", nil, 1}, // k3, by x3
		{"xact_rms_attached", nil, 1},
		{"xact_globals_parked", nil, 0},
		{"xact_phase_two_retries_total", nil, 0},
	}))
	mfs := scrape(t, addr)
	if v, _ := value(mfs, "xact_store_write_duration_seconds", "op", "add_branch", "durability", "durable"); v < 3 {
		t.Errorf("store writes timed: %v durable add_branch, want at least 3", v)
	}
	if _, ok := value(mfs, "xact_recovery_duration_seconds"); !ok {
		t.Error("no xact_recovery_duration_seconds")
	}
	if _, ok := value(mfs, "go_goroutines"); !ok {
		t.Error("no Go runtime metrics")
	}

	// A FAILED answer parks the global: the gauge shows it.
	rm.setAnswer(func(*xactpb.BranchAction) (xactpb.Outcome, string) { return outcomeFailed, "dirty row" })
	x5 := c.begin(time.Minute)
	c.mustRegister(x5, "db1", "k5")
	if st, err := c.commit(x5); err != nil || st != xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_FAILED {
		t.Fatalf("Commit = %v, %v; want COMMIT_FAILED (parked)", st, err)
	}
	eventually(t, "a parked global", check([]want{{"xact_globals_parked", nil, 1}}))

	// An operator resumes it: the gauge drops.
	rm.setAnswer(func(*xactpb.BranchAction) (xactpb.Outcome, string) { return outcomeDone, "" })
	if _, err := c.admin.ForceCommit(context.Background(), &xactpb.ForceRequest{Xid: x5}); err != nil {
		t.Fatalf("ForceCommit: %v", err)
	}
	eventually(t, "no parked global", check([]want{
		{"xact_globals_parked", nil, 0},
		{"xact_globals_finished_total", []string{"outcome", "committed"}, 2},
	}))
}

// TestMetricsOff: without HTTPAddr there is no HTTP server.
func TestMetricsOff(t *testing.T) {
	srv := tctest.Start(t)
	if a := srv.Server().HTTPAddr(); a != "" {
		t.Errorf("HTTPAddr = %q without Config.HTTPAddr", a)
	}
}

// gateStore blocks the first ListGlobals of all globals after armed, and
// GetGlobal of one XID, until released.
type gateStore struct {
	storage.Store
	mu       sync.Mutex
	armed    bool
	xid      string
	entered  chan struct{}
	released chan struct{}
}

func newGate(st storage.Store) *gateStore {
	return &gateStore{Store: st, entered: make(chan struct{}, 1), released: make(chan struct{})}
}

func (g *gateStore) wait(hit bool, released chan struct{}) {
	if !hit {
		return
	}
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-released
}

func (g *gateStore) ListGlobals(ctx context.Context, f storage.Filter) ([]*storage.Global, error) {
	g.mu.Lock()
	hit := g.armed && !f.ParkedOnly
	g.armed = false
	released := g.released
	g.mu.Unlock()
	g.wait(hit, released)
	return g.Store.ListGlobals(ctx, f)
}

func (g *gateStore) GetGlobal(ctx context.Context, xid string) (*storage.Global, error) {
	g.mu.Lock()
	hit := g.xid != "" && xid == g.xid
	released := g.released
	g.mu.Unlock()
	g.wait(hit, released)
	return g.Store.GetGlobal(ctx, xid)
}

func healthCheck(t *testing.T, conn *grpc.ClientConn, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatalf("health check %q: %v", service, err)
	}
	return resp.GetStatus()
}

// TestReadiness: /healthz answers while the process serves; /readyz and
// the gRPC health service say ready only between the end of recovery and
// shutdown. The health service needs no token.
func TestReadiness(t *testing.T) {
	mem := memory.New()
	defer mem.Close()
	gate := newGate(mem)
	cfg := tctest.Config()
	cfg.Store, cfg.HTTPAddr, cfg.Token = gate, "127.0.0.1:0", "secret"
	cfg.ShutdownGrace = time.Minute
	srv, err := tc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr := srv.HTTPAddr()
	gate.mu.Lock()
	gate.armed = true // recovery's listing waits
	gate.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	<-gate.entered

	if code, body := get(t, addr, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz while recovering = %d %q, want 200 ok", code, body)
	}
	if code, body := get(t, addr, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "recovering") {
		t.Errorf("/readyz while recovering = %d %q, want 503 naming recovery", code, body)
	}
	if srv.Ready() {
		t.Error("Ready while recovering")
	}
	close(gate.released)
	eventually(t, "/readyz 200", func() bool { code, _ := get(t, addr, "/readyz"); return code == http.StatusOK })

	conn, err := grpc.NewClient(srv.Addr(), append(protocol.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, svc := range []string{"", "xact.v1.Coordinator", "xact.v1.Admin"} {
		if st := healthCheck(t, conn, svc); st != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q = %v, want SERVING", svc, st)
		}
	}

	// Shutting down: Close waits for an in-flight call (blocked in the
	// store); meanwhile /readyz says so.
	authed := metadataToken(context.Background(), "secret")
	resp, err := xactpb.NewCoordinatorClient(conn).Begin(authed, &xactpb.BeginRequest{TimeoutMs: 60000})
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	gate2 := make(chan struct{})
	gate.mu.Lock()
	gate.xid, gate.released = resp.GetXid(), gate2
	gate.mu.Unlock()
	go xactpb.NewCoordinatorClient(conn).GetStatus(authed, &xactpb.GetStatusRequest{Xid: resp.GetXid()})
	<-gate.entered
	cancel()
	eventually(t, "/readyz 503 shutting down", func() bool {
		code, body := get(t, addr, "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "shutting down")
	})
	if srv.Ready() {
		t.Error("Ready while shutting down")
	}
	close(gate2)
	if err := <-served; err != nil {
		t.Errorf("Serve = %v", err)
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("HTTP still served after Close")
	}
}

func metadataToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}
