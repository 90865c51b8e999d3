package tc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/tc/console"
	"github.com/xact-io/xact/tc/ledger"
)

// HTTPAddr is the address of the operators' HTTP server (/healthz,
// /readyz, /metrics, the web console under /ui/), or "" without
// Config.HTTPAddr.
func (s *Server) HTTPAddr() string {
	if s.httpLis == nil {
		return ""
	}
	return s.httpLis.Addr().String()
}

// Ready reports whether the server has recovered and is not shutting
// down: what /readyz and the gRPC health service answer.
func (s *Server) Ready() bool { return s.ready.Load() }

func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if s.ready.Load() {
			io.WriteString(w, "ok\n")
			return
		}
		reason := "recovering unfinished transactions"
		if s.closing.Load() {
			reason = "shutting down"
		}
		http.Error(w, "not ready: "+reason, http.StatusServiceUnavailable)
	})
	var metrics http.Handler = s.metrics.handler
	if s.cfg.OperatorToken != "" {
		metrics = bearer(s.cfg.OperatorToken, metrics)
	}
	mux.Handle("GET /metrics", metrics)
	// The console calls the Admin service's functions in process, not
	// through gRPC; it checks the operator token itself.
	mux.Handle(console.Path, console.New(consoleBackend{admin: &admin{s: s}}, console.Options{
		Token:  s.cfg.OperatorToken,
		Logger: s.log,
	}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, console.Path, http.StatusFound)
	})
	return mux
}

// bearer lets through only requests with "Authorization: Bearer <token>"
// (Prometheus' bearer_token / authorization settings).
func bearer(token string, h http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		got := sha256.Sum256([]byte(tok))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="xact"`)
			http.Error(w, "unauthorized: want Authorization: Bearer <operator token>", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// consoleBackend is the console's view of the server: the Admin service's
// methods, called in process, and a summary of the metrics.
type consoleBackend struct {
	*admin
}

var _ console.Backend = consoleBackend{}

// Summary reads the instruments /metrics exports, from the same
// Prometheus registry, and the readiness /readyz reports.
func (b consoleBackend) Summary(ctx context.Context) (console.Summary, error) {
	s := b.s
	sum := console.Summary{NodeID: s.cfg.NodeID, Ready: s.Ready(), LocksHeld: -1}
	if s.metrics.handler == nil {
		return sum, fmt.Errorf("tc: metrics are off")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "/metrics", nil)
	if err != nil {
		return sum, err
	}
	rec := &bufferWriter{header: http.Header{}, code: http.StatusOK}
	s.metrics.handler.ServeHTTP(rec, req)
	if rec.code != http.StatusOK {
		return sum, fmt.Errorf("tc: metrics: HTTP %d: %s", rec.code, strings.TrimSpace(rec.buf.String()))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(&rec.buf)
	if err != nil {
		return sum, fmt.Errorf("tc: metrics: %w", err)
	}
	// sumOf adds the samples of a family whose label name has value
	// ("" for every sample); ok is false if the family is not exported.
	sumOf := func(family, name, value string) (n int64, ok bool) {
		mf := mfs[family]
		if mf == nil {
			return 0, false
		}
		for _, m := range mf.GetMetric() {
			if name != "" && !hasLabel(m, name, value) {
				continue
			}
			n += int64(m.GetCounter().GetValue() + m.GetGauge().GetValue())
		}
		return n, true
	}
	sum.Begun, _ = sumOf("xact_globals_begun_total", "", "")
	sum.Committed, _ = sumOf("xact_globals_finished_total", "outcome", "committed")
	sum.RolledBack, _ = sumOf("xact_globals_finished_total", "outcome", "rolled_back")
	sum.TimedOut, _ = sumOf("xact_globals_finished_total", "outcome", "timed_out")
	sum.Parked, _ = sumOf("xact_globals_parked", "", "")
	sum.AttachedRMs, _ = sumOf("xact_rms_attached", "", "")
	if n, ok := sumOf("xact_locks_held", "", ""); ok {
		sum.LocksHeld = n
	}
	sum.Retries, _ = sumOf("xact_phase_two_retries_total", "", "")
	sum.Conflicts, _ = sumOf("xact_lock_conflicts_total", "", "")
	return sum, nil
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name && lp.GetValue() == value {
			return true
		}
	}
	return false
}

// bufferWriter is an http.ResponseWriter into memory.
type bufferWriter struct {
	header http.Header
	code   int
	buf    bytes.Buffer
}

func (w *bufferWriter) Header() http.Header         { return w.header }
func (w *bufferWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }
func (w *bufferWriter) WriteHeader(code int)        { w.code = code }

// setHealth sets the gRPC health of the server ("") and of its services.
func (s *Server) setHealth(st healthpb.HealthCheckResponse_ServingStatus) {
	for _, svc := range []string{"", xactpb.Coordinator_ServiceDesc.ServiceName, xactpb.Admin_ServiceDesc.ServiceName} {
		s.health.SetServingStatus(svc, st)
	}
}

// openLedger is ledger.Open, with the store's writes timed when metrics
// are on, and a function that reports the in-memory lock table's size
// (nil for a store that is its own lock manager).
func openLedger(store storage.Store, m *metrics) (*ledger.Ledger, func() int, error) {
	var st storage.Store = store
	if m.provider != nil {
		st = timedStore{Store: store, m: m}
	}
	if lm, ok := store.(ledger.LockManager); ok {
		return ledger.New(st, lm), nil, nil
	}
	t, err := ledger.LoadTable(context.Background(), store)
	if err != nil {
		return nil, nil, err
	}
	return ledger.New(st, t), t.Len, nil
}
