package tc

import (
	"context"
	"io"
	"net/http"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/tc/ledger"
)

// HTTPAddr is the address of the operators' HTTP server (/healthz,
// /readyz, /metrics), or "" without Config.HTTPAddr.
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
	mux.Handle("GET /metrics", s.metrics.handler)
	return mux
}

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
