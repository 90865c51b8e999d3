// Package api is the bank's API service. Its Transfer handler is where a
// global transaction begins and ends (tm.Manager.Do): it calls the account
// and ledger services with the XID in the gRPC metadata, and commits if
// everything succeeded or rolls back if anything failed.
//
// It is also the orchestrator of the transfer saga, and so the process the
// TC pushes the saga's compensations to (through its rm.Client).
package api

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/rm/saga"
	"github.com/xact-io/xact/samples/bank/bankpb"
	"github.com/xact-io/xact/samples/bank/internal/transport"
	"github.com/xact-io/xact/tm"
)

// Config configures the API service.
type Config struct {
	// TC, Account and Ledger are the addresses of the coordinator and of
	// the other two services.
	TC, Account, Ledger string
	// Logger receives the service's logs (nil: discard).
	Logger *slog.Logger
}

// startTimeout bounds how long Run waits for the TC.
const startTimeout = 30 * time.Second

// Run serves the API service on lis until ctx ends.
func Run(ctx context.Context, cfg Config, lis net.Listener) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	conn, err := transport.DialTC(cfg.TC)
	if err != nil {
		return err
	}
	defer conn.Close()
	// The tm.Manager begins and ends global transactions; the rm.Client
	// runs the saga's compensations when the TC asks for them. They share
	// the connection to the TC.
	tmgr := tm.New(conn, tm.WithLogger(log))
	rmc := rm.New(conn, rm.WithLogger(log), rm.WithDialOptions()) // attaches to every coordinator of a cluster
	defer rmc.Close()

	accConn, err := transport.DialService(cfg.Account)
	if err != nil {
		return err
	}
	defer accConn.Close()
	ledConn, err := transport.DialService(cfg.Ledger)
	if err != nil {
		return err
	}
	defer ledConn.Close()

	s := &service{
		tm:      tmgr,
		account: bankpb.NewAccountClient(accConn),
		ledger:  bankpb.NewLedgerClient(ledConn),
		log:     log,
	}
	// Define declares the saga's compensations to rmc (resources
	// "transfer/move" and "transfer/post"), so that the TC can push them
	// here, even after a restart of this process.
	if s.saga, err = saga.Define(tmgr, rmc, "transfer",
		saga.Step("move", s.moveStep, s.compensateMove),
		saga.Step("post", s.postStep, s.compensatePost),
	); err != nil {
		return fmt.Errorf("api: %w", err)
	}

	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := rmc.Start(sctx); err != nil {
		return fmt.Errorf("api: attach to TC %s: %w", cfg.TC, err)
	}

	srv := transport.NewServer()
	bankpb.RegisterBankServer(srv, s)
	log.Info("api service ready", "addr", lis.Addr().String())
	return transport.Serve(ctx, srv, lis)
}
