// Package ledger is the bank's ledger service: one entry per transfer, in
// a MariaDB database of its own. It takes part in global transactions in
// all three of xact's application modes:
//
//   - AT: Post inserts a posted entry through the AT data source; a
//     rollback deletes it again from the undo log.
//   - TCC: Reserve is the Try of the TCC resource "ledger-post": it inserts
//     a pending entry; the TC calls Confirm (post it) or Cancel (void it)
//     on this service's RM when the global transaction ends.
//   - Saga: PostStep inserts a posted entry and CompensatePost voids it.
//
// TCC and saga work is fenced (fence.Fence): Confirm and Cancel run at most
// once per branch, a Cancel whose Try never arrived does nothing, and a Try
// that arrives after its Cancel is refused.
package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/xact-io/xact/datasource"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/rm/fence"
	"github.com/xact-io/xact/rm/tcc"
	"github.com/xact-io/xact/samples/bank/bankpb"
	"github.com/xact-io/xact/samples/bank/internal/transport"
)

// Config configures the ledger service.
type Config struct {
	// TC is the coordinator's address.
	TC string
	// DSN is the ledger database's go-sql-driver/mysql DSN. The database
	// holds the entry table (schema/ledger.sql), undo_log (`xact sql
	// undo-log`) and tcc_fence_log (`xact sql tcc-fence`).
	DSN string
	// Logger receives the service's logs (nil: discard).
	Logger *slog.Logger
}

// startTimeout bounds how long Run waits for the database and the TC.
const startTimeout = 30 * time.Second

// Run serves the ledger service on lis until ctx ends.
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
	rmc := rm.New(conn, rm.WithLogger(log), rm.WithDialOptions()) // attaches to every coordinator of a cluster

	// db is the AT data source: a local transaction whose context carries
	// an XID becomes a branch, and rmc runs the database's phase two.
	db, err := datasource.Open("mysql", cfg.DSN, datasource.WithRM(rmc), datasource.WithLogger(log))
	if err != nil {
		return fmt.Errorf("ledger: open database: %w", err)
	}
	defer db.Close()

	// plain is the same database without the AT wrapper, for the fence
	// and the work it guards. A TCC Try runs with the XID in its context;
	// through the AT data source its local transaction would become an AT
	// branch as well. TCC and saga entries are rows of their own (one per
	// branch) that no AT branch ever locks, so they need no global locks.
	mc, err := mysql.ParseDSN(cfg.DSN)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	inner, err := mysql.NewConnector(mc)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	plain := sql.OpenDB(inner)
	defer plain.Close()
	f, err := fence.New(plain, fence.WithLogger(log))
	if err != nil {
		return fmt.Errorf("ledger: fence: %w", err)
	}
	defer f.Close()

	s := &service{db: db, plain: plain, fence: f, log: log}
	// Declaring the TCC resource tells rmc to run its Confirm and Cancel
	// for branches of "ledger-post", whichever process registered them.
	if s.post, err = tcc.RegisterFenced(rmc, postResource, f, tcc.FencedFuncs[reservation]{
		Try:     s.tryPost,
		Confirm: s.confirmPost,
		Cancel:  s.cancelPost,
	}); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	defer rmc.Close() // runs first: no phase two after this point

	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for _, d := range []*sql.DB{db, plain} {
		if err := d.PingContext(sctx); err != nil {
			return fmt.Errorf("ledger: database: %w", err)
		}
	}
	if err := rmc.Start(sctx); err != nil {
		return fmt.Errorf("ledger: attach to TC %s: %w", cfg.TC, err)
	}

	srv := transport.NewServer()
	bankpb.RegisterLedgerServer(srv, s)
	log.Info("ledger service ready", "addr", lis.Addr().String(), "resource", datasource.ResourceID(mc))
	return transport.Serve(ctx, srv, lis)
}
