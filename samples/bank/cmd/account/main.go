// Command account runs the bank's account service.
//
//	account --tc 127.0.0.1:8091 --listen 127.0.0.1:9101 --dsn 'root@tcp(127.0.0.1:3306)/bank_account'
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

	"github.com/xact-io/xact/samples/bank/account"
)

func main() {
	tc := flag.String("tc", "127.0.0.1:8091", "coordinator `address`")
	listen := flag.String("listen", "127.0.0.1:9101", "gRPC listen `address`")
	dsn := flag.String("dsn", "", "account database `DSN` (go-sql-driver/mysql), required")
	var level slog.Level
	flag.TextVar(&level, "log-level", slog.LevelInfo, "log `level`: debug (shows branch registrations and phase two), info, warn or error")
	flag.Parse()
	if *dsn == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("service", "account")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("listen", "err", err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", lis.Addr())
	if err := account.Run(ctx, account.Config{TC: *tc, DSN: *dsn, Logger: log}, lis); err != nil {
		log.Error("account service stopped", "err", err)
		os.Exit(1)
	}
}
