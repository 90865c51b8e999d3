// Command ledger runs the bank's ledger service.
//
//	ledger --tc 127.0.0.1:8091 --listen 127.0.0.1:9102 --dsn 'root@tcp(127.0.0.1:3306)/bank_ledger'
//
// It prints "listening on ADDR" once it serves (--listen with port 0 picks
// a free port), and stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/xact-io/xact/samples/bank/ledger"
)

func main() {
	tc := flag.String("tc", "127.0.0.1:8091", "coordinator `address`")
	listen := flag.String("listen", "127.0.0.1:9102", "gRPC listen `address`")
	dsn := flag.String("dsn", "", "ledger database `DSN` (go-sql-driver/mysql), required")
	var level slog.Level
	flag.TextVar(&level, "log-level", slog.LevelInfo, "log `level`: debug (shows branch registrations and phase two), info, warn or error")
	flag.Parse()
	if *dsn == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("service", "ledger")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("listen", "err", err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", lis.Addr())
	if err := ledger.Run(ctx, ledger.Config{TC: *tc, DSN: *dsn, Logger: log}, lis); err != nil {
		log.Error("ledger service stopped", "err", err)
		os.Exit(1)
	}
}
