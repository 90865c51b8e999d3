// Package account is the bank's account service: balances in one MariaDB
// database, written through xact's AT data source.
//
// A Move called inside a global transaction (the caller's XID arrives in
// gRPC metadata) is an AT branch: the data source records before and after
// images of the rows in undo_log, in the same local transaction, and the
// coordinator (TC) holds global locks on them until the global transaction
// ends. If it rolls back, the TC tells this service's RM to replay the
// images; nothing in this package does it by hand.
//
// MoveStep and CompensateMove are the same work as a saga step and its
// compensation, made idempotent by a fence.Fence. They go through the same
// data source, as global-lock transactions: they commit for good (no undo
// log), but wait for the rows an undecided AT transfer holds.
package account

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/xact-io/xact/datasource"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/rm/fence"
	"github.com/xact-io/xact/samples/bank/bankpb"
	"github.com/xact-io/xact/samples/bank/internal/transport"
)

// Config configures the account service.
type Config struct {
	// TC is the coordinator's address.
	TC string
	// DSN is the account database's go-sql-driver/mysql DSN. The database
	// holds the account table (schema/account.sql), undo_log (`xact sql
	// undo-log`) and tcc_fence_log (`xact sql tcc-fence`).
	DSN string
	// Logger receives the service's logs (nil: discard).
	Logger *slog.Logger
}

// startTimeout bounds how long Run waits for the database and the TC.
const startTimeout = 30 * time.Second

// Run serves the account service on lis until ctx ends.
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

	// The RM registers this service's branches with the TC and receives
	// their phase two (commit: delete the undo log; rollback: replay it)
	// on a stream it opens to the TC. The service never listens for the TC.
	rmc := rm.New(conn, rm.WithLogger(log), rm.WithDialOptions()) // attaches to every coordinator of a cluster

	// The *sql.DB is a normal one: the AT wrapper turns each local
	// transaction whose context carries an XID into a branch. WithRM also
	// declares to rmc that this process runs phase two for the database's
	// resource id ("host:port/dbname").
	db, err := datasource.Open("mysql", cfg.DSN, datasource.WithRM(rmc), datasource.WithLogger(log))
	if err != nil {
		return fmt.Errorf("account: open database: %w", err)
	}
	defer db.Close()

	mc, err := mysql.ParseDSN(cfg.DSN)
	if err != nil {
		return fmt.Errorf("account: %w", err)
	}
	// The fence's table is in the same database: its record of a saga
	// step is written in the step's own local transaction (see MoveStep
	// for the context that keeps that transaction out of AT).
	f, err := fence.New(db, fence.WithLogger(log))
	if err != nil {
		return fmt.Errorf("account: fence: %w", err)
	}
	defer f.Close()
	defer rmc.Close() // runs first: no phase two after this point

	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := db.PingContext(sctx); err != nil {
		return fmt.Errorf("account: database: %w", err)
	}
	// Attach to the TC. From here on, phase two of this database's
	// branches (from this run or an earlier one) is delivered here.
	if err := rmc.Start(sctx); err != nil {
		return fmt.Errorf("account: attach to TC %s: %w", cfg.TC, err)
	}

	srv := transport.NewServer()
	bankpb.RegisterAccountServer(srv, &service{db: db, fence: f, log: log})
	log.Info("account service ready", "addr", lis.Addr().String(), "resource", datasource.ResourceID(mc))
	return transport.Serve(ctx, srv, lis)
}
