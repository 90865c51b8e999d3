// Command api runs the bank's API service, where transfers begin and end.
//
//	api --tc 127.0.0.1:8091 --listen 127.0.0.1:9100 --account 127.0.0.1:9101 --ledger 127.0.0.1:9102
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

	"github.com/xact-io/xact/samples/bank/api"
)

func main() {
	tc := flag.String("tc", "127.0.0.1:8091", "coordinator `address`")
	listen := flag.String("listen", "127.0.0.1:9100", "gRPC listen `address`")
	acc := flag.String("account", "127.0.0.1:9101", "account service `address`")
	led := flag.String("ledger", "127.0.0.1:9102", "ledger service `address`")
	var level slog.Level
	flag.TextVar(&level, "log-level", slog.LevelInfo, "log `level`: debug (shows branch registrations and phase two), info, warn or error")
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("service", "api")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("listen", "err", err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", lis.Addr())
	if err := api.Run(ctx, api.Config{TC: *tc, Account: *acc, Ledger: *led, Logger: log}, lis); err != nil {
		log.Error("api service stopped", "err", err)
		os.Exit(1)
	}
}
