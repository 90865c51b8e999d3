package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only with --debug-addr
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/xact-io/xact/storage/memory"
	"github.com/xact-io/xact/storage/shareddb"
	"github.com/xact-io/xact/tc"
)

// serverAbout is the description `xact server --help` prints.
const serverAbout = `Runs the coordinator. Every flag can also be set as XACT_<FLAG> in the
environment (XACT_LISTEN, XACT_DATA_DIR, ...) or as "flag = value" in --config;
a flag on the command line wins over the environment, which wins over the file.
Durations take a unit: 500ms, 10s, 1m, 24h.
Tracing: with OTEL_EXPORTER_OTLP_ENDPOINT set (or OTEL_TRACES_EXPORTER=otlp or
console), spans go out over OTLP as the standard OTEL_* variables say.`

func serverCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := tc.DefaultConfig()
	fs := newFlagSet("xact server", "[flags]", serverAbout, stdout)
	// flagOf names the flag that sets a Config field, so that Validate's
	// errors name what the operator wrote.
	flagOf := map[string]string{}
	str := func(p *string, name, usage string, field string) {
		fs.StringVar(p, name, *p, usage)
		flagOf[field] = name
	}
	dur := func(p *time.Duration, name, usage string, field string) {
		durationVar(fs, p, name, *p, usage)
		flagOf[field] = name
	}
	num := func(p *int, name, usage string, field string) {
		fs.IntVar(p, name, *p, usage)
		flagOf[field] = name
	}
	fs.String("config", "", "read settings from this `file` (lines of name = value, # comments)")
	str(&cfg.ListenAddr, "listen", "gRPC listen `address`", "ListenAddr")
	str(&cfg.DataDir, "data-dir", "`directory` of the embedded store (locked against a second server)", "DataDir")
	str(&cfg.NodeID, "node-id", "this coordinator's `name` inside XIDs (unique among the live coordinators of a shared store)", "NodeID")
	str(&cfg.AdvertiseAddr, "advertise-addr", "the `host:port` clients reach this coordinator at, in a cluster on a shared store (default: the listen address, with the host name for an unspecified host)", "AdvertiseAddr")
	dur(&cfg.Lease, "lease", "with --store mysql or postgres: this coordinator's lease; the others take over its globals when it has not renewed it for this long", "Lease")
	dur(&cfg.TombstoneRetention, "tombstone-retention", "how long a finished transaction's final status stays visible (GetStatus, repeated Commit, xact tx show)", "TombstoneRetention")
	dur(&cfg.DefaultTimeout, "default-timeout", "global transaction timeout when Begin gives none", "DefaultTimeout")
	dur(&cfg.MaxTimeout, "max-timeout", "largest timeout a client may ask for", "MaxTimeout")
	dur(&cfg.PhaseTwoTimeout, "phase-two-timeout", "wait for an RM's answer to one phase-two action", "PhaseTwoTimeout")
	dur(&cfg.DecisionWait, "decision-wait", "how long Commit/Rollback wait for phase two before answering in-progress", "DecisionWait")
	fs.BoolVar(&cfg.WaitATCommit, "wait-at-commit", cfg.WaitATCommit, "make Commit wait for phase two also when every branch is AT (by default it answers once the decision is durable)")
	dur(&cfg.RetryBase, "retry-base", "first phase-two retry delay (doubles, with jitter)", "RetryBase")
	dur(&cfg.RetryMax, "retry-max", "largest phase-two retry delay", "RetryMax")
	num(&cfg.RetryBudget, "retry-budget", "phase-two attempts before a transaction is parked", "RetryBudget")
	dur(&cfg.ScanInterval, "scan-interval", "how often timeouts and due retries are looked for", "ScanInterval")
	num(&cfg.MaxLockKeys, "max-lock-keys", "most lock keys in one branch registration", "MaxLockKeys")
	num(&cfg.MaxRecvMsgBytes, "max-message-bytes", "largest gRPC message accepted", "MaxRecvMsgBytes")
	dur(&cfg.KeepaliveTime, "keepalive-time", "ping a client connection silent this long (at least 1s), to notice RMs that vanished", "KeepaliveTime")
	dur(&cfg.KeepaliveTimeout, "keepalive-timeout", "close a client connection whose ping is not answered within this", "KeepaliveTimeout")
	str(&cfg.HTTPAddr, "http-addr", "serve /healthz, /readyz, Prometheus /metrics and the web console /ui/ on this `address` (e.g. 127.0.0.1:9091); with --operator-token, /ui/ needs a login with it and /metrics Authorization: Bearer <operator token>, else they are open: keep the address private. /healthz and /readyz are always open. Metrics are recorded only with --http-addr", "HTTPAddr")
	str(&cfg.TLSCertFile, "tls-cert", "serve gRPC over TLS only, with the PEM certificate in this `file` (and --tls-key); clients: --tls-ca, protocol.ClientTLS", "TLSCertFile")
	str(&cfg.TLSKeyFile, "tls-key", "the PEM `file` of the private key of --tls-cert", "TLSKeyFile")
	str(&cfg.ClientCAFile, "client-ca", "mutual TLS: refuse clients without a certificate signed by a CA in this PEM `file` (needs --tls-cert); clients: --tls-cert and --tls-key", "ClientCAFile")
	str(&cfg.Token, "token", "the participants' bearer `token`: required from every TM and RM, and from operators too unless --operator-token is set (clients: --token, protocol.WithToken). Set it as XACT_TOKEN, which ps does not show", "Token")
	str(&cfg.OperatorToken, "operator-token", "the operators' bearer `token`: the Admin service (xact tx, xact lock) then requires it and refuses --token; it admits to everything. Set it as XACT_OPERATOR_TOKEN, which ps does not show", "OperatorToken")
	dur(&cfg.ShutdownGrace, "shutdown-grace", "wait for in-flight calls on shutdown", "ShutdownGrace")
	gcPercent := fs.Int("gc-percent", 400, "Go GC target (runtime/debug.SetGCPercent); ignored when GOGC is set. The TC's live heap is small and its allocation rate high, so a higher target trades some tens of MB for CPU")
	storeKind := fs.String("store", "badger", "badger (durable, embedded, in --data-dir), mysql or postgres (a database several coordinators may share, --store-dsn; create its schema with `xact sql migrate`), or memory (loses everything on exit; for benchmarks and demos)")
	storeDSN := fs.String("store-dsn", "", "with --store mysql or postgres: the database's `DSN` (user:pw@tcp(db:3306)/xact, or postgres://user@db:5432/xact)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text (key=value lines) or json (one JSON object a line); lines about one transaction carry its XID as xid")
	debugAddr := fs.String("debug-addr", "", "serve net/http/pprof on this `address` (e.g. 127.0.0.1:6060)")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef(fs.Name(), "unexpected argument %q", pos[0])
	}
	if err := flagErrors(fs.Name(), cfg.Validate(), flagOf); err != nil {
		return err
	}
	if *gcPercent < 1 {
		return usagef(fs.Name(), "--gc-percent must be positive, got %d (a negative value turns the garbage collector off)", *gcPercent)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usagef(fs.Name(), "--log-level %q: want debug, info, warn or error", *logLevel)
	}
	var handler slog.Handler
	switch opts := (&slog.HandlerOptions{Level: level}); *logFormat {
	case "text":
		handler = slog.NewTextHandler(stderr, opts)
	case "json":
		handler = slog.NewJSONHandler(stderr, opts)
	default:
		return usagef(fs.Name(), "--log-format %q: want text or json", *logFormat)
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(*gcPercent)
	}
	cfg.Logger = slog.New(handler)
	stopTracing, err := setupTracing(ctx, cfg.Logger, stderr) // otel.go: from the OTEL_* environment
	if err != nil {
		return err
	}
	defer stopTracing()
	if *debugAddr != "" {
		lis, err := net.Listen("tcp", *debugAddr)
		if err != nil {
			return fmt.Errorf("--debug-addr: %w", err)
		}
		dbg := &http.Server{Handler: http.DefaultServeMux, ReadHeaderTimeout: 10 * time.Second}
		go dbg.Serve(lis)
		defer dbg.Close()
	}
	if *storeDSN != "" && *storeKind != "mysql" && *storeKind != "postgres" {
		return usagef(fs.Name(), "--store-dsn needs --store mysql or postgres (not %q)", *storeKind)
	}
	switch *storeKind {
	case "badger":
	case "memory":
		cfg.Store = memory.New()
		cfg.Logger.Warn("memory store: nothing survives a restart; never use it in production")
	case "mysql", "postgres":
		if *storeDSN == "" {
			return usagef(fs.Name(), "--store %s needs --store-dsn", *storeKind)
		}
		st, err := shareddb.Open(ctx, shareddb.Dialect(*storeKind), *storeDSN, shareddb.WithTombstoneRetention(cfg.TombstoneRetention))
		if err != nil {
			return err
		}
		defer st.Close()
		cfg.Store = st
		// Phase two reaches only the RMs attached to this coordinator.
		cfg.Logger.Info("shared-database store: the RMs must attach to every coordinator of this database (one rm.Client per coordinator)")
	default:
		return usagef(fs.Name(), "--store %q: want badger, mysql, postgres or memory", *storeKind)
	}
	srv, err := tc.New(cfg)
	if err != nil {
		// A TLS file it cannot use: name the flag (and the file), but it
		// is no mistake of the command line's.
		return flagNames(err, flagOf)
	}
	cfg.Logger.Info("xact server listening", "addr", srv.Addr(), "http_addr", srv.HTTPAddr(), "data_dir", cfg.DataDir, "node_id", cfg.NodeID,
		"tls", cfg.TLSCertFile != "", "client_certificates", cfg.ClientCAFile != "",
		"token", cfg.Token != "", "operator_token", cfg.OperatorToken != "")
	fmt.Fprintf(stdout, "listening on %s\n", srv.Addr())
	if a := srv.HTTPAddr(); a != "" {
		fmt.Fprintf(stdout, "http on %s\n", a)
	}
	err = srv.Serve(ctx)
	cfg.Logger.Info("xact server stopped")
	return err
}

// flagErrors turns Validate's *tc.ConfigErrors into a *usageError that
// names the flags (flagOf: Config field -> flag name) instead of the
// fields. Other errors pass unchanged.
func flagErrors(cmd string, err error, flagOf map[string]string) error {
	if err == nil {
		return nil
	}
	named := flagNames(err, flagOf)
	if named == err {
		return err
	}
	return &usageError{cmd: cmd, err: named}
}

// flagNames restates *tc.ConfigErrors (one, or several joined) with the
// flags that set their fields; it returns err itself if it holds other
// errors.
func flagNames(err error, flagOf map[string]string) error {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	name := func(field string) string {
		if f, ok := flagOf[field]; ok {
			return "--" + f
		}
		return field
	}
	var msgs []string
	for _, e := range errs {
		var ce *tc.ConfigError
		if !errors.As(e, &ce) {
			return err
		}
		msgs = append(msgs, ce.Format(name))
	}
	return errors.New(strings.Join(msgs, "\n"))
}
