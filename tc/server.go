// Package tc is the transaction coordinator: the server that tracks global
// transactions, holds global row locks, and drives phase two.
//
// The server is embeddable; `xact server` is a thin wrapper around it:
//
//	cfg := tc.DefaultConfig()
//	cfg.DataDir = "/var/lib/xact"
//	srv, err := tc.New(cfg)
//	if err != nil { ... }
//	defer srv.Close()
//	err = srv.Serve(ctx) // until ctx is done or Close is called
//
// Everything the TC acknowledges is durable in its store before the answer
// leaves (I2). Phase two is pushed to RMs over their Attach streams and
// retried with capped exponential backoff until it is DONE, or until the
// retry budget is spent and the transaction is parked for an operator.
package tc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/xact-io/xact/internal/stripe"
	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/storage/embedded"
	"github.com/xact-io/xact/tc/internal/hub"
	"github.com/xact-io/xact/tc/ledger"
)

// streamWorkers is the number of goroutines that serve gRPC calls and
// keep their grown stacks between calls.
const streamWorkers = 256

// Server is a running coordinator.
type Server struct {
	cfg      Config
	log      *slog.Logger
	store    storage.Store
	ownStore bool
	ledger   *ledger.Ledger // the store with the lock table and the rules
	member   *member        // this coordinator's membership of a shared store (cluster.go), or nil
	lis      net.Listener
	grpc     *grpc.Server
	hub      *hub.Hub
	xids     *xidGen
	stripes  *stripe.Mutexes // serialize decisions per global
	drive    *driver
	wake     *waker
	metrics  *metrics
	traces   *traces        // RPC spans and the globals' trace contexts (trace.go)
	health   *health.Server // gRPC health: SERVING from recovery to Close
	ready    atomic.Bool    // recovered and not closing (/readyz)
	closing  atomic.Bool    // Close has begun
	httpLis  net.Listener   // nil without HTTPAddr
	http     *http.Server

	bg       context.Context // cancelled by Close: stops background work
	stopBg   context.CancelFunc
	wg       sync.WaitGroup
	closeMu  sync.Mutex
	closed   bool
	serveErr chan error
}

// New opens the store, binds the listen address and prepares the server.
// Call Serve to start serving and Close to stop.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	creds, err := cfg.serverCredentials() // TLS files (tls.go)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{cfg: cfg, log: log, store: cfg.Store, serveErr: make(chan error, 1), stripes: stripe.New(256)}
	m, err := newMetrics(cfg.HTTPAddr != "")
	if err != nil {
		return nil, fmt.Errorf("tc: metrics: %w", err)
	}
	s.metrics = m
	if s.store == nil {
		st, err := embedded.Open(cfg.DataDir, embedded.WithTombstoneRetention(cfg.TombstoneRetention), embedded.WithLogger(log))
		if err != nil {
			return nil, fmt.Errorf("tc: open store: %w", err)
		}
		s.store, s.ownStore = st, true
	}
	closeStore := func() {
		if s.ownStore {
			s.store.Close()
		}
	}
	lg, lockLen, err := openLedger(s.store, m)
	if err != nil {
		closeStore()
		return nil, fmt.Errorf("tc: open store: %w", err)
	}
	s.ledger = lg
	lis, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		closeStore()
		return nil, fmt.Errorf("tc: listen: %w", err)
	}
	s.lis = lis
	if err := s.join(context.Background()); err != nil {
		lis.Close()
		closeStore()
		return nil, err
	}
	if cfg.HTTPAddr != "" {
		hl, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			s.leave()
			lis.Close()
			closeStore()
			return nil, fmt.Errorf("tc: listen (HTTP): %w", err)
		}
		s.httpLis = hl
		s.http = &http.Server{Handler: s.httpHandler(), ReadHeaderTimeout: 10 * time.Second}
	}
	s.lis = lis
	s.bg, s.stopBg = context.WithCancel(context.Background())
	s.wake = newWaker(s)
	s.hub = hub.New(cfg.NodeID, log, s.wake.attached)
	s.xids = newXIDGen(cfg.NodeID)
	s.drive = newDriver(s)
	s.grpc = grpc.NewServer(
		// Reused handler goroutines: a new goroutine per RPC grows its
		// stack again on every call, which cost 15% of the server's CPU
		// under `xact bench` (runtime.newstack/copystack). A call that
		// finds every worker busy (most wait on an fsync) gets a goroutine
		// of its own, as without workers.
		grpc.NumStreamWorkers(streamWorkers),
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgBytes),
		grpc.Creds(creds),
		grpc.ChainUnaryInterceptor(s.unaryAuth), // auth.go
		grpc.ChainStreamInterceptor(s.streamAuth),
		s.traceOption(), // RPC spans; keeps the globals' trace contexts (trace.go)
		// Permit the pings of clients dialed with protocol.DialOptions,
		// also on connections without a call (a TM between transactions).
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: protocol.MinPingInterval, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: cfg.KeepaliveTime, Timeout: cfg.KeepaliveTimeout}),
	)
	xactpb.RegisterCoordinatorServer(s.grpc, &coordinator{s: s})
	xactpb.RegisterAdminServer(s.grpc, &admin{s: s})
	s.health = health.NewServer()
	s.setHealth(healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	if err := m.observe(s, lockLen); err != nil {
		s.Close()
		return nil, fmt.Errorf("tc: metrics: %w", err)
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Store is the store the server persists through.
func (s *Server) Store() storage.Store { return s.store }

// Ledger is the server's store with its lock table and the coordinator's
// rules (tc/ledger).
func (s *Server) Ledger() *ledger.Ledger { return s.ledger }

// Serve recovers unfinished transactions, starts the background loops and
// serves gRPC until ctx is done or Close is called. It returns nil after a
// clean stop.
func (s *Server) Serve(ctx context.Context) error {
	if s.http != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.http.Serve(s.httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("http server", "err", err)
			}
		}()
	}
	if s.member != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.heartbeat()
		}()
	}
	start := time.Now()
	if err := s.recover(ctx); err != nil {
		// Stopped (a signal) before serving, or unable to recover: either
		// way nothing is served, and the store is closed cleanly.
		cerr := s.Close()
		if ctx.Err() != nil {
			return cerr
		}
		return err
	}
	s.metrics.recovery.Record(context.Background(), time.Since(start).Seconds())
	s.closeMu.Lock()
	if !s.closed {
		s.ready.Store(true)
		s.setHealth(healthpb.HealthCheckResponse_SERVING)
	}
	s.closeMu.Unlock()
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.scanLoop()
	}()
	go func() {
		defer s.wg.Done()
		s.wake.loop(s.bg)
	}()
	go func() { s.serveErr <- s.grpc.Serve(s.lis) }()
	select {
	case <-ctx.Done():
		return s.Close()
	case err := <-s.serveErr:
		if errors.Is(err, grpc.ErrServerStopped) {
			return nil
		}
		return err
	}
}

// Close stops the server: background work first (its state is in the store
// and resumes on the next start), then RM streams, then in-flight RPCs get
// up to ShutdownGrace to finish. Close is idempotent.
func (s *Server) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.closing.Store(true)
	s.ready.Store(false)
	s.health.Shutdown() // NOT_SERVING, and stays so
	s.stopBg()
	s.hub.Close()
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.cfg.ShutdownGrace):
		s.grpc.Stop()
		<-done
	}
	if s.http != nil {
		s.http.Close()
		s.httpLis.Close() // if Serve never served it
	}
	s.wg.Wait()
	s.drive.wait()
	s.leave()
	s.metrics.shutdown()
	if s.ownStore {
		return s.store.Close()
	}
	return nil
}

func (s *Server) stripe(xid string) *sync.Mutex { return s.stripes.For(xid) }
