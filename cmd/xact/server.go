package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only with --debug-addr
	"os"
	"runtime/debug"
	"time"

	"github.com/xact-io/xact/storage/memory"
	"github.com/xact-io/xact/tc"
)

func serverCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := tc.DefaultConfig()
	fs := flag.NewFlagSet("xact server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: xact server [flags]\n\nRuns the coordinator. Every flag can also be set as XACT_<FLAG> in the\nenvironment (XACT_LISTEN, XACT_DATA_DIR, ...) or as \"flag = value\" in --config.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.String("config", "", "read settings from this `file` (lines of name = value, # comments)")
	fs.StringVar(&cfg.ListenAddr, "listen", cfg.ListenAddr, "gRPC listen `address`")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "`directory` of the embedded store (locked against a second server)")
	fs.StringVar(&cfg.NodeID, "node-id", cfg.NodeID, "this coordinator's `name` inside XIDs")
	fs.DurationVar(&cfg.TombstoneRetention, "tombstone-retention", cfg.TombstoneRetention, "how long a finished transaction's final status stays visible (GetStatus, repeated Commit, xact tx show)")
	fs.DurationVar(&cfg.DefaultTimeout, "default-timeout", cfg.DefaultTimeout, "global transaction timeout when Begin gives none")
	fs.DurationVar(&cfg.MaxTimeout, "max-timeout", cfg.MaxTimeout, "largest timeout a client may ask for")
	fs.DurationVar(&cfg.PhaseTwoTimeout, "phase-two-timeout", cfg.PhaseTwoTimeout, "wait for an RM's answer to one phase-two action")
	fs.DurationVar(&cfg.DecisionWait, "decision-wait", cfg.DecisionWait, "how long Commit/Rollback wait for phase two before answering in-progress")
	fs.BoolVar(&cfg.WaitATCommit, "wait-at-commit", cfg.WaitATCommit, "make Commit wait for phase two also when every branch is AT (by default it answers once the decision is durable)")
	fs.DurationVar(&cfg.RetryBase, "retry-base", cfg.RetryBase, "first phase-two retry delay (doubles, with jitter)")
	fs.DurationVar(&cfg.RetryMax, "retry-max", cfg.RetryMax, "largest phase-two retry delay")
	fs.IntVar(&cfg.RetryBudget, "retry-budget", cfg.RetryBudget, "phase-two attempts before a transaction is parked")
	fs.DurationVar(&cfg.ScanInterval, "scan-interval", cfg.ScanInterval, "how often timeouts and due retries are looked for")
	fs.IntVar(&cfg.MaxLockKeys, "max-lock-keys", cfg.MaxLockKeys, "most lock keys in one branch registration")
	fs.IntVar(&cfg.MaxRecvMsgBytes, "max-message-bytes", cfg.MaxRecvMsgBytes, "largest gRPC message accepted")
	fs.DurationVar(&cfg.KeepaliveTime, "keepalive-time", cfg.KeepaliveTime, "ping a client connection silent this long (at least 1s), to notice RMs that vanished")
	fs.DurationVar(&cfg.KeepaliveTimeout, "keepalive-timeout", cfg.KeepaliveTimeout, "close a client connection whose ping is not answered within this")
	fs.StringVar(&cfg.Token, "token", "", "require this bearer `token` from every client")
	fs.DurationVar(&cfg.ShutdownGrace, "shutdown-grace", cfg.ShutdownGrace, "wait for in-flight calls on shutdown")
	gcPercent := fs.Int("gc-percent", 400, "Go GC target (runtime/debug.SetGCPercent); ignored when GOGC is set. The TC's live heap is small and its allocation rate high, so a higher target trades some tens of MB for CPU")
	storeKind := fs.String("store", "badger", "badger (durable, in --data-dir) or memory (loses everything on exit; for benchmarks and demos)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	debugAddr := fs.String("debug-addr", "", "serve net/http/pprof on this `address` (e.g. 127.0.0.1:6060)")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(*gcPercent)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if *debugAddr != "" {
		lis, err := net.Listen("tcp", *debugAddr)
		if err != nil {
			return fmt.Errorf("--debug-addr: %w", err)
		}
		dbg := &http.Server{Handler: http.DefaultServeMux, ReadHeaderTimeout: 10 * time.Second}
		go dbg.Serve(lis)
		defer dbg.Close()
	}
	switch *storeKind {
	case "badger":
	case "memory":
		cfg.Store = memory.New()
		cfg.Logger.Warn("memory store: nothing survives a restart; never use it in production")
	default:
		return fmt.Errorf("--store %q: want badger or memory", *storeKind)
	}
	srv, err := tc.New(cfg)
	if err != nil {
		return err
	}
	cfg.Logger.Info("xact server listening", "addr", srv.Addr(), "data_dir", cfg.DataDir, "node_id", cfg.NodeID)
	fmt.Fprintf(stdout, "listening on %s\n", srv.Addr())
	err = srv.Serve(ctx)
	cfg.Logger.Info("xact server stopped")
	return err
}
