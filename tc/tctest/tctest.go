// Package tctest starts an in-process coordinator for tests.
//
//	srv := tctest.Start(t)
//	conn := srv.Conn(t) // a *grpc.ClientConn to it, closed at cleanup
//
// The server listens on a free loopback port with short timers (scan
// interval, retry backoff) so that tests of retries and timeouts run fast.
// Its store survives Restart, which stops the server and starts a new one
// on the same address and store, as a process restart would.
package tctest

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/storage/embedded"
	"github.com/xact-io/xact/storage/memory"
	"github.com/xact-io/xact/tc"
)

// Option changes the test server's configuration.
type Option func(*options)

type options struct {
	cfg    tc.Config
	badger bool
	wrap   func(storage.Store) storage.Store
}

// WithConfig lets a test change any configuration field.
func WithConfig(f func(*tc.Config)) Option { return func(o *options) { f(&o.cfg) } }

// WithStoreWrapper puts f's store between the server and its store, for
// tests that interleave store calls with the server's (Store still returns
// the inner store).
func WithStoreWrapper(f func(storage.Store) storage.Store) Option {
	return func(o *options) { o.wrap = f }
}

// WithBadger runs the server on a Badger store in a temporary directory
// instead of the memory store.
func WithBadger() Option { return func(o *options) { o.badger = true } }

// Config is the configuration tests start from: DefaultConfig with a free
// port and fast timers.
func Config() tc.Config {
	cfg := tc.DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.ScanInterval = 20 * time.Millisecond
	cfg.RetryBase = 20 * time.Millisecond
	cfg.RetryMax = 200 * time.Millisecond
	cfg.PhaseTwoTimeout = 2 * time.Second
	cfg.DecisionWait = 3 * time.Second
	cfg.ShutdownGrace = 2 * time.Second
	return cfg
}

// Server is a running test coordinator.
type Server struct {
	t      testing.TB
	cfg    tc.Config
	store  storage.Store
	dir    string // the Badger store's directory, if any
	srv    *tc.Server
	done   chan error
	cancel context.CancelFunc
}

// Start starts a coordinator and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := options{cfg: Config()}
	for _, f := range opts {
		f(&o)
	}
	s := &Server{t: t, cfg: o.cfg}
	if o.badger {
		s.dir = t.TempDir()
		st, err := embedded.Open(s.dir)
		if err != nil {
			t.Fatalf("tctest: open badger: %v", err)
		}
		s.store = st
	} else {
		s.store = memory.New()
	}
	s.cfg.Store = s.store
	if o.wrap != nil {
		s.cfg.Store = o.wrap(s.store)
	}
	s.start()
	t.Cleanup(func() {
		s.Stop()
		if err := s.store.Close(); err != nil {
			t.Errorf("tctest: close store: %v", err)
		}
	})
	return s
}

func (s *Server) start() {
	s.t.Helper()
	var srv *tc.Server
	var err error
	for i := 0; i < 100; i++ { // after a restart the old port may linger briefly
		if srv, err = tc.New(s.cfg); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("tctest: %v", err)
	}
	s.srv = srv
	s.cfg.ListenAddr = srv.Addr() // a restart keeps the address
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.done = make(chan error, 1)
	go func() { s.done <- srv.Serve(ctx) }()
}

// Stop stops the server (keeping its store). Stop is idempotent.
func (s *Server) Stop() {
	if s.srv == nil {
		return
	}
	s.cancel()
	if err := <-s.done; err != nil && !errors.Is(err, context.Canceled) {
		s.t.Errorf("tctest: serve: %v", err)
	}
	s.srv = nil
}

// Restart stops the server and starts a new one on the same address and
// store, as a process restart would.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// ReopenStore stops the server, closes its Badger store and opens it again
// from its directory, so that what the store keeps in memory (the due
// index) is rebuilt from disk as after a process restart (and the lock
// table, when Restart opens the server's ledger).
// The server stays stopped until Restart.
func (s *Server) ReopenStore() {
	s.t.Helper()
	if s.dir == "" {
		s.t.Fatalf("tctest: ReopenStore needs WithBadger")
	}
	s.Stop()
	if err := s.store.Close(); err != nil {
		s.t.Fatalf("tctest: close store: %v", err)
	}
	st, err := embedded.Open(s.dir)
	if err != nil {
		s.t.Fatalf("tctest: reopen badger: %v", err)
	}
	s.store = st
	s.cfg.Store = st
}

// Addr is the server's address.
func (s *Server) Addr() string { return s.cfg.ListenAddr }

// Server is the running tc.Server (nil while stopped).
func (s *Server) Server() *tc.Server { return s.srv }

// Store is the server's store; it survives restarts.
func (s *Server) Store() storage.Store { return s.store }

// Conn dials the server with protocol.DialOptions, as clients should; the
// connection is closed when the test ends. It reconnects across Restart.
func (s *Server) Conn(t testing.TB) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(s.Addr(), append(protocol.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatalf("tctest: dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
