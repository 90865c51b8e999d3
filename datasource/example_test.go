package datasource_test

import (
	"context"
	"database/sql"
	"errors"
	"log"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"google.golang.org/grpc"

	"github.com/xact-io/xact/datasource"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/tm"
)

// A transfer between two databases, each a resource of its own. conn is
// the connection to the TC; both databases hold the undo_log table
// (undo.LogTableDDL).
func Example() {
	var conn *grpc.ClientConn
	ctx := context.Background()

	rmc := rm.New(conn)
	defer rmc.Close()
	orders, err := datasource.Open("mysql", "app:secret@tcp(orders-db:3306)/orders", datasource.WithRM(rmc))
	if err != nil {
		log.Fatal(err)
	}
	defer orders.Close()
	bank, err := datasource.Open("mysql", "app:secret@tcp(bank-db:3306)/bank", datasource.WithRM(rmc))
	if err != nil {
		log.Fatal(err)
	}
	defer bank.Close()
	if err := rmc.Start(ctx); err != nil { // phase two arrives on the RM's stream
		log.Fatal(err)
	}

	mgr := tm.New(conn)
	err = mgr.Do(ctx, tm.Options{Name: "pay-order", Timeout: 10 * time.Second}, func(ctx context.Context) error {
		// A statement on the DB with the global context is a branch of
		// its own.
		if _, err := orders.ExecContext(ctx, "UPDATE orders SET status = 'paid' WHERE id = ?", 42); err != nil {
			return err
		}
		// A transaction begun with it is one branch.
		tx, err := bank.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance - ? WHERE id = ?", 100, 7); err != nil {
			return err
		}
		return tx.Commit()
	})
	var lc *datasource.LockConflictError
	switch {
	case errors.As(err, &lc):
		log.Printf("row %s of %s is held by %s; try again later", lc.Key, lc.Table, lc.Holder)
	case err != nil:
		log.Print(err)
	}
}

// A connector built from a driver configuration; the resource id must be
// given, as a driver.Connector does not tell its address.
func ExampleNewConnector() {
	var rmc *rm.Client
	cfg := gomysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.DBName = "app", "tcp", "bank-db:3306", "bank"
	inner, err := gomysql.NewConnector(cfg)
	if err != nil {
		log.Fatal(err)
	}
	c, err := datasource.NewConnector(inner,
		datasource.WithRM(rmc),
		datasource.WithResourceID(datasource.ResourceID(cfg)), // "bank-db:3306/bank"
		datasource.WithLockWait(5*time.Second, 20*time.Millisecond),
	)
	if err != nil {
		log.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close() // closes the connector too
}

// A local transaction outside any global one that must not change rows a
// global transaction holds (Seata's @GlobalLock).
func ExampleWithGlobalLockContext() {
	var db *sql.DB // opened with datasource.Open and WithRM
	ctx := datasource.WithGlobalLockContext(context.Background())
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "UPDATE account SET frozen = 1 WHERE id = ?", 7); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(); errors.Is(err, datasource.ErrLockConflict) {
		log.Print("a global transaction holds the row; nothing was changed")
	}
}
